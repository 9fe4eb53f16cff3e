-- The MDMS catalog: the meters it knows (class for the VEE rule set, grid groups for
-- aggregation), VEE exceptions with their resolution, and manual edits awaiting approval.
-- Times are BIGINT Unix milliseconds (UTC); register is the packed OBIS key of interval_reading.

CREATE TABLE mdms_meter (
    id             TEXT   PRIMARY KEY,
    class          TEXT   NOT NULL DEFAULT 'default',
    feeder         TEXT   NOT NULL DEFAULT '',
    transformer    TEXT   NOT NULL DEFAULT '',
    customer_class TEXT   NOT NULL DEFAULT '',
    first_seen     BIGINT NOT NULL
);
CREATE INDEX mdms_meter_feeder ON mdms_meter (feeder);
CREATE INDEX mdms_meter_transformer ON mdms_meter (transformer);
CREATE INDEX mdms_meter_customer_class ON mdms_meter (customer_class);

-- status: 0 open, 1 resolved.
CREATE TABLE vee_exception (
    id          BIGSERIAL PRIMARY KEY,
    meter       TEXT     NOT NULL,
    register    BIGINT   NOT NULL,
    ts          BIGINT   NOT NULL,
    rule        TEXT     NOT NULL,
    reason      TEXT     NOT NULL,
    status      SMALLINT NOT NULL DEFAULT 0,
    resolution  TEXT,
    resolved_by TEXT,
    raised_at   BIGINT   NOT NULL,
    resolved_at BIGINT,
    UNIQUE (meter, register, ts, rule)
);
CREATE INDEX vee_exception_open ON vee_exception (meter, register, ts) WHERE status = 0;

-- status: 0 pending, 1 approved, 2 rejected.
CREATE TABLE meter_edit (
    id          BIGSERIAL PRIMARY KEY,
    meter       TEXT     NOT NULL,
    register    BIGINT   NOT NULL,
    ts          BIGINT   NOT NULL,
    mantissa    BIGINT   NOT NULL,
    exponent    SMALLINT NOT NULL CHECK (exponent BETWEEN -18 AND 18),
    unit        SMALLINT NOT NULL,
    reason      TEXT     NOT NULL,
    status      SMALLINT NOT NULL DEFAULT 0,
    proposed_by TEXT     NOT NULL,
    proposed_at BIGINT   NOT NULL,
    reviewed_by TEXT,
    reviewed_at BIGINT,
    review_note TEXT,
    version     INTEGER
);
