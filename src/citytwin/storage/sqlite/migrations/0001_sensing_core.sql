-- SensorThings API 1.1 sensing core on SQLite.
-- Times are INTEGER microseconds since 1970-01-01 UTC; JSON is TEXT; geometry is WKB
-- with an R*Tree per geometry column for bounding-box prefilters.
-- AUTOINCREMENT keeps ids of deleted entities from being handed out again.

CREATE TABLE things (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    properties TEXT
);
CREATE INDEX things_name ON things (name);

CREATE TABLE features (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    encoding_type TEXT NOT NULL,
    feature TEXT NOT NULL,
    feature_geom BLOB,
    properties TEXT
);
CREATE INDEX features_name ON features (name);
CREATE VIRTUAL TABLE features_feature_rtree USING rtree (id, minx, maxx, miny, maxy);

CREATE TABLE locations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    encoding_type TEXT NOT NULL,
    location TEXT NOT NULL,
    location_geom BLOB,
    properties TEXT,
    gen_foi_id INTEGER REFERENCES features (id) ON DELETE SET NULL
);
CREATE INDEX locations_name ON locations (name);
CREATE INDEX locations_gen_foi ON locations (gen_foi_id);
CREATE VIRTUAL TABLE locations_location_rtree USING rtree (id, minx, maxx, miny, maxy);

CREATE TABLE thing_locations (
    thing_id INTEGER NOT NULL REFERENCES things (id) ON DELETE CASCADE,
    location_id INTEGER NOT NULL REFERENCES locations (id) ON DELETE CASCADE,
    PRIMARY KEY (thing_id, location_id)
) WITHOUT ROWID;
CREATE INDEX thing_locations_location ON thing_locations (location_id);

CREATE TABLE historical_locations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time INTEGER NOT NULL,
    thing_id INTEGER NOT NULL REFERENCES things (id) ON DELETE CASCADE
);
CREATE INDEX historical_locations_thing ON historical_locations (thing_id, time);

CREATE TABLE location_historical_locations (
    location_id INTEGER NOT NULL REFERENCES locations (id) ON DELETE CASCADE,
    historical_location_id INTEGER NOT NULL
        REFERENCES historical_locations (id) ON DELETE CASCADE,
    PRIMARY KEY (location_id, historical_location_id)
) WITHOUT ROWID;
CREATE INDEX location_historical_locations_hl
    ON location_historical_locations (historical_location_id);

CREATE TABLE sensors (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    encoding_type TEXT NOT NULL,
    metadata TEXT NOT NULL,
    properties TEXT
);
CREATE INDEX sensors_name ON sensors (name);

CREATE TABLE observed_properties (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    definition TEXT NOT NULL,
    description TEXT NOT NULL,
    properties TEXT
);
CREATE INDEX observed_properties_name ON observed_properties (name);

CREATE TABLE datastreams (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    unit_of_measurement TEXT NOT NULL,
    observation_type TEXT NOT NULL,
    observed_area TEXT,
    observed_area_geom BLOB,
    phenomenon_time_start INTEGER,
    phenomenon_time_end INTEGER,
    result_time_start INTEGER,
    result_time_end INTEGER,
    properties TEXT,
    thing_id INTEGER NOT NULL REFERENCES things (id) ON DELETE CASCADE,
    sensor_id INTEGER NOT NULL REFERENCES sensors (id) ON DELETE CASCADE,
    observed_property_id INTEGER NOT NULL REFERENCES observed_properties (id) ON DELETE CASCADE
);
CREATE INDEX datastreams_name ON datastreams (name);
CREATE INDEX datastreams_thing ON datastreams (thing_id);
CREATE INDEX datastreams_sensor ON datastreams (sensor_id);
CREATE INDEX datastreams_observed_property ON datastreams (observed_property_id);
CREATE VIRTUAL TABLE datastreams_observed_area_rtree USING rtree (id, minx, maxx, miny, maxy);

CREATE TABLE observations (
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
    datastream_id INTEGER NOT NULL REFERENCES datastreams (id) ON DELETE CASCADE,
    feature_id INTEGER NOT NULL REFERENCES features (id) ON DELETE CASCADE
);
-- one Datastream's Observations by time: time-range pages, latest value, range upkeep
CREATE INDEX observations_datastream_time
    ON observations (datastream_id, phenomenon_time_start, phenomenon_time_end);
CREATE INDEX observations_feature ON observations (feature_id);
CREATE INDEX observations_time ON observations (phenomenon_time_start);

-- keep the R*Trees free of rows whose entity is gone (also on cascaded deletes)
CREATE TRIGGER features_rtree_delete AFTER DELETE ON features BEGIN
    DELETE FROM features_feature_rtree WHERE id = old.id;
END;
CREATE TRIGGER locations_rtree_delete AFTER DELETE ON locations BEGIN
    DELETE FROM locations_location_rtree WHERE id = old.id;
END;
CREATE TRIGGER datastreams_rtree_delete AFTER DELETE ON datastreams BEGIN
    DELETE FROM datastreams_observed_area_rtree WHERE id = old.id;
END;
