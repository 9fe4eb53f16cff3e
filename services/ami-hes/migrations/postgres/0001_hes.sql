-- The HES registry, key store and event log (PostgreSQL).
--
-- Times are BIGINT Unix milliseconds, UTC (the same statements serve SQLite). Protocol
-- identities (DLMS system title hex, M-Bus MMM-IIIIIIII, OSGP device id hex) are unique when
-- present: they are how decoders and events name a meter. status: 1 installed, 2 commissioned,
-- 3 disconnected, 4 retired.

CREATE TABLE meter (
    serial            text   PRIMARY KEY,
    manufacturer      text   NOT NULL DEFAULT '',
    model             text   NOT NULL DEFAULT '',
    protocol          text   NOT NULL,
    dlms_system_title text   UNIQUE,
    mbus_address      text   UNIQUE,
    osgp_device_id    text   UNIQUE,
    adapter           text   NOT NULL DEFAULT '',
    concentrator      text   NOT NULL DEFAULT '',
    service_point     text   NOT NULL DEFAULT '',
    customer          text   NOT NULL DEFAULT '',
    location          text   NOT NULL DEFAULT '',
    latitude_e6       bigint,
    longitude_e6      bigint,
    feeder            text   NOT NULL DEFAULT '',
    transformer       text   NOT NULL DEFAULT '',
    phase             text   NOT NULL DEFAULT '',
    status            bigint NOT NULL CHECK (status BETWEEN 1 AND 4),
    status_changed_at bigint NOT NULL,
    created_at        bigint NOT NULL
);
CREATE INDEX meter_topology ON meter (feeder, transformer);
CREATE INDEX meter_transformer ON meter (transformer);

-- Keys, encrypted at rest: ciphertext = nonce || AES-256-GCM(data key, key) || tag, and the data
-- key wrapped under the master key (master_key_id names which). state: 1 active, 2 previous
-- (until grace_until), 3 retired (ciphertext and wrapped key erased).
CREATE TABLE meter_key (
    serial        text   NOT NULL REFERENCES meter (serial),
    role          text   NOT NULL,
    version       bigint NOT NULL CHECK (version >= 1),
    state         bigint NOT NULL CHECK (state BETWEEN 1 AND 3),
    master_key_id text   NOT NULL,
    wrapped_dek   bytea  NOT NULL,
    ciphertext    bytea  NOT NULL,
    created_at    bigint NOT NULL,
    grace_until   bigint NOT NULL DEFAULT 0,
    created_by    text   NOT NULL,
    PRIMARY KEY (serial, role, version)
);
CREATE UNIQUE INDEX meter_key_one_active ON meter_key (serial, role) WHERE state = 1;

-- Meter events as the host published them; a redelivered event is stored once.
CREATE TABLE meter_event (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    frame       text   NOT NULL,
    meter       text   NOT NULL,
    serial      text,
    kind        text   NOT NULL,
    ts          bigint NOT NULL,
    code        bigint NOT NULL,
    source      text,
    duration_s  bigint NOT NULL,
    received_at bigint NOT NULL,
    UNIQUE (frame, meter, kind, ts, code)
);
CREATE INDEX meter_event_serial_ts ON meter_event (serial, ts);
CREATE INDEX meter_event_ts ON meter_event (ts);
