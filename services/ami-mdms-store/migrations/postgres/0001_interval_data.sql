-- Interval data of the MDMS store (PostgreSQL).
--
-- interval_reading holds each interval's original as received (version 1), range-partitioned
-- by month on ts (the interval end, UTC); ingest creates the monthly partitions it needs
-- (interval_reading_pYYYYMM). reading_version holds every later version (conflicting re-reads,
-- VEE estimates, manual edits), numbered from 2; nothing is ever updated in place.
--
-- register: the six OBIS groups packed into 48 bits, A highest (1-0:1.8.0*255 = x'0100010800ff').
-- value: mantissa * 10^exponent in the base unit; unit: DLMS unit code; quality: flag bits
-- (1 suspect, 2 estimated, 4 edited, ...). source: 1 received, 2 estimated, 3 edited.

CREATE TABLE interval_reading (
    meter       text        NOT NULL,
    register    bigint      NOT NULL,
    ts          timestamptz NOT NULL,
    mantissa    bigint      NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    quality     integer     NOT NULL,
    exponent    smallint    NOT NULL CHECK (exponent BETWEEN -18 AND 18),
    unit        smallint    NOT NULL,
    PRIMARY KEY (meter, register, ts)
) PARTITION BY RANGE (ts);

CREATE TABLE reading_version (
    meter       text        NOT NULL,
    register    bigint      NOT NULL,
    ts          timestamptz NOT NULL,
    version     integer     NOT NULL CHECK (version >= 2),
    mantissa    bigint      NOT NULL,
    exponent    smallint    NOT NULL CHECK (exponent BETWEEN -18 AND 18),
    unit        smallint    NOT NULL,
    quality     integer     NOT NULL,
    source      smallint    NOT NULL CHECK (source IN (1, 2, 3)),
    actor       text        NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    reason      text,
    method      text,
    PRIMARY KEY (meter, register, ts, version)
);
