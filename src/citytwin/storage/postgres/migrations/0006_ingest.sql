-- Observations keep their Datastream, MultiDatastream and FeatureOfInterest ids without
-- foreign keys. A foreign key checks each new row by a query of its own (two or three per
-- Observation), which was a third to a half of what PostgreSQL spent taking in a batch
-- of Observations. Instead, every insert or move of Observations through citytwin first
-- locks the rows it refers to (FOR KEY SHARE, once per id and transaction) and refuses
-- ids that do not exist (PostgresStore, _Writer.references), which is what the foreign
-- key's own check did. The lock holds until commit, so a concurrent delete of the
-- Datastream waits for the insert, and the triggers below, which run after the delete
-- has its row and see every committed Observation, delete the new ones too: no
-- Observation outlives what it refers to.

ALTER TABLE observations
    DROP CONSTRAINT observations_datastream_id_fkey,
    DROP CONSTRAINT observations_feature_id_fkey,
    DROP CONSTRAINT observations_multi_datastream_id_fkey;

-- ON DELETE CASCADE, as the foreign keys had it
CREATE FUNCTION observations_of_deleted_datastream() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM observations WHERE datastream_id = OLD.id;
    RETURN NULL;
END $$;

CREATE FUNCTION observations_of_deleted_multi_datastream() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM observations WHERE multi_datastream_id = OLD.id;
    RETURN NULL;
END $$;

CREATE FUNCTION observations_of_deleted_feature() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM observations WHERE feature_id = OLD.id;
    RETURN NULL;
END $$;

CREATE TRIGGER datastreams_delete_observations AFTER DELETE ON datastreams
    FOR EACH ROW EXECUTE FUNCTION observations_of_deleted_datastream();
CREATE TRIGGER multi_datastreams_delete_observations AFTER DELETE ON multi_datastreams
    FOR EACH ROW EXECUTE FUNCTION observations_of_deleted_multi_datastream();
CREATE TRIGGER features_delete_observations AFTER DELETE ON features
    FOR EACH ROW EXECUTE FUNCTION observations_of_deleted_feature();

-- Only MultiDatastreams' Observations have a multi_datastream_id: the index need not
-- take an entry for every other Observation. Queries of it name a MultiDatastream
-- (multi_datastream_id = x), which the partial index answers.
DROP INDEX observations_multi_datastream_time;
CREATE INDEX observations_multi_datastream_time
    ON observations (multi_datastream_id, phenomenon_time_start, phenomenon_time_end)
    WHERE multi_datastream_id IS NOT NULL;
