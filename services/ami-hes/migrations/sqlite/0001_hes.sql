-- The HES registry, key store and event log (embedded SQLite): the same tables and statements
-- as on PostgreSQL. Times are INTEGER Unix milliseconds, UTC. status: 1 installed,
-- 2 commissioned, 3 disconnected, 4 retired.

CREATE TABLE meter (
    serial            TEXT    PRIMARY KEY,
    manufacturer      TEXT    NOT NULL DEFAULT '',
    model             TEXT    NOT NULL DEFAULT '',
    protocol          TEXT    NOT NULL,
    dlms_system_title TEXT    UNIQUE,
    mbus_address      TEXT    UNIQUE,
    osgp_device_id    TEXT    UNIQUE,
    adapter           TEXT    NOT NULL DEFAULT '',
    concentrator      TEXT    NOT NULL DEFAULT '',
    service_point     TEXT    NOT NULL DEFAULT '',
    customer          TEXT    NOT NULL DEFAULT '',
    location          TEXT    NOT NULL DEFAULT '',
    latitude_e6       INTEGER,
    longitude_e6      INTEGER,
    feeder            TEXT    NOT NULL DEFAULT '',
    transformer       TEXT    NOT NULL DEFAULT '',
    phase             TEXT    NOT NULL DEFAULT '',
    status            INTEGER NOT NULL CHECK (status BETWEEN 1 AND 4),
    status_changed_at INTEGER NOT NULL,
    created_at        INTEGER NOT NULL
);
CREATE INDEX meter_topology ON meter (feeder, transformer);
CREATE INDEX meter_transformer ON meter (transformer);

-- Keys, encrypted at rest (see the PostgreSQL migration). state: 1 active, 2 previous,
-- 3 retired.
CREATE TABLE meter_key (
    serial        TEXT    NOT NULL REFERENCES meter (serial),
    role          TEXT    NOT NULL,
    version       INTEGER NOT NULL CHECK (version >= 1),
    state         INTEGER NOT NULL CHECK (state BETWEEN 1 AND 3),
    master_key_id TEXT    NOT NULL,
    wrapped_dek   BLOB    NOT NULL,
    ciphertext    BLOB    NOT NULL,
    created_at    INTEGER NOT NULL,
    grace_until   INTEGER NOT NULL DEFAULT 0,
    created_by    TEXT    NOT NULL,
    PRIMARY KEY (serial, role, version)
);
CREATE UNIQUE INDEX meter_key_one_active ON meter_key (serial, role) WHERE state = 1;

CREATE TABLE meter_event (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    frame       TEXT    NOT NULL,
    meter       TEXT    NOT NULL,
    serial      TEXT,
    kind        TEXT    NOT NULL,
    ts          INTEGER NOT NULL,
    code        INTEGER NOT NULL,
    source      TEXT,
    duration_s  INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    UNIQUE (frame, meter, kind, ts, code)
);
CREATE INDEX meter_event_serial_ts ON meter_event (serial, ts);
CREATE INDEX meter_event_ts ON meter_event (ts);
