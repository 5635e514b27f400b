-- SensorThings Tasking Core (OGC 17-079r1) on SQLite: Actuators, TaskingCapabilities, Tasks.
-- Deleting a Thing or an Actuator deletes its TaskingCapabilities, and those their Tasks.
-- A Task's status, statusMessage and answer record what its device made of it.

CREATE TABLE actuators (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    encoding_type TEXT NOT NULL,
    metadata TEXT NOT NULL,
    properties TEXT
);
CREATE INDEX actuators_name ON actuators (name);

CREATE TABLE tasking_capabilities (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    tasking_parameters TEXT NOT NULL,
    properties TEXT,
    thing_id INTEGER NOT NULL REFERENCES things (id) ON DELETE CASCADE,
    actuator_id INTEGER NOT NULL REFERENCES actuators (id) ON DELETE CASCADE
);
CREATE INDEX tasking_capabilities_name ON tasking_capabilities (name);
CREATE INDEX tasking_capabilities_thing ON tasking_capabilities (thing_id);
CREATE INDEX tasking_capabilities_actuator ON tasking_capabilities (actuator_id);

CREATE TABLE tasks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    creation_time INTEGER,
    tasking_parameters TEXT NOT NULL,
    properties TEXT,
    status TEXT,
    status_message TEXT,
    answer TEXT,
    tasking_capability_id INTEGER NOT NULL
        REFERENCES tasking_capabilities (id) ON DELETE CASCADE
);
CREATE INDEX tasks_capability ON tasks (tasking_capability_id, creation_time);
CREATE INDEX tasks_creation_time ON tasks (creation_time);
