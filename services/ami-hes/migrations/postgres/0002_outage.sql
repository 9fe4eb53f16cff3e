-- Outages as the detector found them (PostgreSQL), so that a restarted HES still knows which
-- meters are out and restores the outage when their power-ups arrive.
--
-- Times are BIGINT Unix milliseconds, UTC (0: not yet). scope: meter, transformer or feeder;
-- node: the meter serial, transformer or feeder. state: detected, confirmed,
-- partially-restored, restored.

CREATE TABLE outage (
    id           text   PRIMARY KEY,
    scope        text   NOT NULL CHECK (scope IN ('meter', 'transformer', 'feeder')),
    node         text   NOT NULL,
    state        text   NOT NULL
                 CHECK (state IN ('detected', 'confirmed', 'partially-restored', 'restored')),
    started_at   bigint NOT NULL,
    confirmed_at bigint NOT NULL DEFAULT 0,
    restored_at  bigint NOT NULL DEFAULT 0
);
CREATE INDEX outage_open ON outage (started_at) WHERE state <> 'restored';

-- The meters of each outage; restored: 1 once the meter is back.
CREATE TABLE outage_meter (
    outage   text   NOT NULL REFERENCES outage (id) ON DELETE CASCADE,
    serial   text   NOT NULL,
    restored bigint NOT NULL DEFAULT 0 CHECK (restored IN (0, 1)),
    PRIMARY KEY (outage, serial)
);
