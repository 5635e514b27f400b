-- MultiDatastreams (SensorThings API 1.1 section 9): a Datastream whose Observations have
-- array results, one value per ObservedProperty in the order of the link's position.
-- An Observation now belongs to a Datastream or a MultiDatastream, so observations is
-- rebuilt: SQLite cannot drop a NOT NULL constraint in place.

CREATE TABLE multi_datastreams (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    unit_of_measurements TEXT NOT NULL,
    observation_type TEXT NOT NULL,
    multi_observation_data_types TEXT NOT NULL,
    observed_area TEXT,
    observed_area_geom BLOB,
    phenomenon_time_start INTEGER,
    phenomenon_time_end INTEGER,
    result_time_start INTEGER,
    result_time_end INTEGER,
    properties TEXT,
    thing_id INTEGER NOT NULL REFERENCES things (id) ON DELETE CASCADE,
    sensor_id INTEGER NOT NULL REFERENCES sensors (id) ON DELETE CASCADE,
    -- the same summary as datastreams (see 0002)
    observation_count INTEGER NOT NULL DEFAULT 0,
    last_observation_id INTEGER,
    last_observation_start INTEGER,
    last_observation_end INTEGER
);
CREATE INDEX multi_datastreams_name ON multi_datastreams (name);
CREATE INDEX multi_datastreams_thing ON multi_datastreams (thing_id);
CREATE INDEX multi_datastreams_sensor ON multi_datastreams (sensor_id);
CREATE VIRTUAL TABLE multi_datastreams_observed_area_rtree
    USING rtree (id, minx, maxx, miny, maxy);
CREATE TRIGGER multi_datastreams_rtree_delete AFTER DELETE ON multi_datastreams BEGIN
    DELETE FROM multi_datastreams_observed_area_rtree WHERE id = old.id;
END;

CREATE TABLE multi_datastream_observed_properties (
    multi_datastream_id INTEGER NOT NULL REFERENCES multi_datastreams (id) ON DELETE CASCADE,
    observed_property_id INTEGER NOT NULL
        REFERENCES observed_properties (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    PRIMARY KEY (multi_datastream_id, position)
) WITHOUT ROWID;
CREATE INDEX multi_datastream_observed_properties_op
    ON multi_datastream_observed_properties (observed_property_id);

CREATE TABLE observations_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    phenomenon_time_start INTEGER NOT NULL,
    phenomenon_time_end INTEGER NOT NULL,
    result_time INTEGER,
    result_type INTEGER NOT NULL,
    result_number REAL,
    result_string TEXT,
    result_json TEXT,
    result_quality TEXT,
    valid_time_start INTEGER,
    valid_time_end INTEGER,
    parameters TEXT,
    datastream_id INTEGER REFERENCES datastreams (id) ON DELETE CASCADE,
    feature_id INTEGER NOT NULL REFERENCES features (id) ON DELETE CASCADE,
    multi_datastream_id INTEGER REFERENCES multi_datastreams (id) ON DELETE CASCADE
);
INSERT INTO observations_new (
    id, phenomenon_time_start, phenomenon_time_end, result_time, result_type, result_number,
    result_string, result_json, result_quality, valid_time_start, valid_time_end, parameters,
    datastream_id, feature_id)
SELECT
    id, phenomenon_time_start, phenomenon_time_end, result_time, result_type, result_number,
    result_string, result_json, result_quality, valid_time_start, valid_time_end, parameters,
    datastream_id, feature_id
FROM observations;
-- keep ids of deleted Observations from being handed out again
DELETE FROM sqlite_sequence WHERE name = 'observations_new';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'observations_new', seq FROM sqlite_sequence WHERE name = 'observations';
DROP TABLE observations;
ALTER TABLE observations_new RENAME TO observations;
CREATE INDEX observations_datastream_time
    ON observations (datastream_id, phenomenon_time_start, phenomenon_time_end);
CREATE INDEX observations_multi_datastream_time
    ON observations (multi_datastream_id, phenomenon_time_start, phenomenon_time_end);
CREATE INDEX observations_feature ON observations (feature_id);
CREATE INDEX observations_time ON observations (phenomenon_time_start);
