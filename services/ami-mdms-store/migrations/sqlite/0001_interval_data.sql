-- Interval data of the MDMS store (embedded SQLite): the same tables as on PostgreSQL, with
-- times as INTEGER Unix milliseconds (UTC) and no partitions.
--
-- interval_reading holds each interval's original as received (version 1); reading_version
-- every later version (conflicting re-reads, VEE estimates, manual edits), numbered from 2.
-- register: the six OBIS groups packed into 48 bits, A highest. value: mantissa * 10^exponent
-- in the base unit; unit: DLMS unit code; quality: flag bits. source: 1 received, 2 estimated,
-- 3 edited.

CREATE TABLE interval_reading (
    meter       TEXT    NOT NULL,
    register    INTEGER NOT NULL,
    ts          INTEGER NOT NULL,
    mantissa    INTEGER NOT NULL,
    exponent    INTEGER NOT NULL CHECK (exponent BETWEEN -18 AND 18),
    unit        INTEGER NOT NULL,
    quality     INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (meter, register, ts)
) WITHOUT ROWID;

CREATE TABLE reading_version (
    meter       TEXT    NOT NULL,
    register    INTEGER NOT NULL,
    ts          INTEGER NOT NULL,
    version     INTEGER NOT NULL CHECK (version >= 2),
    mantissa    INTEGER NOT NULL,
    exponent    INTEGER NOT NULL CHECK (exponent BETWEEN -18 AND 18),
    unit        INTEGER NOT NULL,
    quality     INTEGER NOT NULL,
    source      INTEGER NOT NULL CHECK (source IN (1, 2, 3)),
    actor       TEXT    NOT NULL,
    recorded_at INTEGER NOT NULL,
    reason      TEXT,
    method      TEXT,
    PRIMARY KEY (meter, register, ts, version)
) WITHOUT ROWID;
