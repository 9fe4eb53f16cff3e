-- Commands of the head-end, their audit trail, bulk requests and firmware campaigns.
-- Times are ms since the Unix epoch, UTC. Kinds, results and targets are the JSON of
-- ami_bus::command and ami_commands::model.

CREATE TABLE command (
    id            text PRIMARY KEY,
    seq           bigserial NOT NULL,
    meter         text NOT NULL,
    adapter       text NOT NULL,
    segment       text NOT NULL,
    kind          text NOT NULL,
    state         text NOT NULL,
    attempts      integer NOT NULL,
    requested_by  text NOT NULL,
    reason        text NOT NULL,
    created_ms    bigint NOT NULL,
    deadline_ms   bigint NOT NULL,
    updated_ms    bigint NOT NULL,
    next_at_ms    bigint NOT NULL,
    detail        text NOT NULL,
    result        text,
    parent        text,
    bulk          text,
    campaign      text
);
CREATE INDEX command_active ON command (seq) WHERE state IN ('queued', 'sent', 'delivered');
-- next_at_ms never exceeds deadline_ms + 1, so the due ones include those to expire.
CREATE INDEX command_due ON command (next_at_ms) WHERE state IN ('queued', 'sent', 'delivered');
CREATE INDEX command_bulk ON command (bulk, seq) WHERE bulk IS NOT NULL;
CREATE INDEX command_meter ON command (meter, created_ms);

CREATE TABLE command_audit (
    id          bigserial PRIMARY KEY,
    command     text NOT NULL REFERENCES command (id),
    at_ms       bigint NOT NULL,
    actor       text NOT NULL,
    from_state  text,
    to_state    text NOT NULL,
    reason      text NOT NULL
);
CREATE INDEX command_audit_command ON command_audit (command, id);

CREATE TABLE bulk_request (
    id                 text PRIMARY KEY,
    kind               text NOT NULL,
    targets            text NOT NULL,
    requested_by       text NOT NULL,
    reason             text NOT NULL,
    created_ms         bigint NOT NULL,
    deadline_after_ms  bigint NOT NULL,
    state              text NOT NULL,
    decided_by         text,
    decision_reason    text
);

CREATE TABLE campaign (
    id                   text PRIMARY KEY,
    version              text NOT NULL,
    image                bytea NOT NULL,
    block_size           integer NOT NULL,
    requested_by         text NOT NULL,
    created_ms           bigint NOT NULL,
    command_deadline_ms  bigint NOT NULL,
    max_failures         integer NOT NULL
);

CREATE TABLE campaign_meter (
    campaign    text NOT NULL REFERENCES campaign (id),
    ord         integer NOT NULL,
    meter       text NOT NULL,
    adapter     text NOT NULL,
    segment     text NOT NULL,
    phase       text NOT NULL,
    next_block  integer NOT NULL,
    in_flight   text,
    failures    integer NOT NULL,
    version     text,
    detail      text NOT NULL,
    PRIMARY KEY (campaign, meter)
);
