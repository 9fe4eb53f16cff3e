-- Outages as the detector found them (embedded SQLite): the same tables and statements as on
-- PostgreSQL. Times are INTEGER Unix milliseconds, UTC (0: not yet).

CREATE TABLE outage (
    id           TEXT    PRIMARY KEY,
    scope        TEXT    NOT NULL CHECK (scope IN ('meter', 'transformer', 'feeder')),
    node         TEXT    NOT NULL,
    state        TEXT    NOT NULL
                 CHECK (state IN ('detected', 'confirmed', 'partially-restored', 'restored')),
    started_at   INTEGER NOT NULL,
    confirmed_at INTEGER NOT NULL DEFAULT 0,
    restored_at  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX outage_open ON outage (started_at) WHERE state <> 'restored';

CREATE TABLE outage_meter (
    outage   TEXT    NOT NULL REFERENCES outage (id) ON DELETE CASCADE,
    serial   TEXT    NOT NULL,
    restored INTEGER NOT NULL DEFAULT 0 CHECK (restored IN (0, 1)),
    PRIMARY KEY (outage, serial)
);
