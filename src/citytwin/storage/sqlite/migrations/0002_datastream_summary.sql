-- A summary per Datastream, kept current by every write: the number of Observations and
-- the latest one (by phenomenonTime start, then end, then lowest id). It answers "latest
-- value of every sensor" and unfiltered counts without scanning Observations.

ALTER TABLE datastreams ADD COLUMN observation_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE datastreams ADD COLUMN last_observation_id INTEGER;
ALTER TABLE datastreams ADD COLUMN last_observation_start INTEGER;
ALTER TABLE datastreams ADD COLUMN last_observation_end INTEGER;

UPDATE datastreams SET
    observation_count = (SELECT count(*) FROM observations o WHERE o.datastream_id = datastreams.id),
    last_observation_id = (
        SELECT o.id FROM observations o WHERE o.datastream_id = datastreams.id
        ORDER BY o.phenomenon_time_start DESC, o.phenomenon_time_end DESC, o.id ASC LIMIT 1),
    last_observation_start = (
        SELECT o.phenomenon_time_start FROM observations o WHERE o.datastream_id = datastreams.id
        ORDER BY o.phenomenon_time_start DESC, o.phenomenon_time_end DESC, o.id ASC LIMIT 1),
    last_observation_end = (
        SELECT o.phenomenon_time_end FROM observations o WHERE o.datastream_id = datastreams.id
        ORDER BY o.phenomenon_time_start DESC, o.phenomenon_time_end DESC, o.id ASC LIMIT 1);
