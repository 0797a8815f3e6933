-- tascreed bulletin, schema version 1. Plain SQL that PostgreSQL also accepts (with BLOB ->
-- BYTEA, INTEGER -> BIGINT); partial indexes keep the hot queries proportional to the work.

CREATE TABLE jobs (
    ns            TEXT    NOT NULL,
    job_name      TEXT    NOT NULL,
    trig          TEXT    NOT NULL,
    state         TEXT    NOT NULL,
    -- 1 when the define allows one alive job: enforced by jobs_unique_alive
    unique_alive  INTEGER NULL,
    version       INTEGER NOT NULL,
    wake_at       INTEGER NULL,
    create_time   INTEGER NOT NULL,
    modify_time   INTEGER NOT NULL,
    body          TEXT    NOT NULL,
    PRIMARY KEY (ns, job_name, trig)
);
CREATE UNIQUE INDEX jobs_unique_alive ON jobs (ns, job_name) WHERE unique_alive = 1;

CREATE TABLE archive_jobs (
    ns           TEXT    NOT NULL,
    job_name     TEXT    NOT NULL,
    trig         TEXT    NOT NULL,
    state        TEXT    NOT NULL,
    archived_at  INTEGER NOT NULL,
    body         TEXT    NOT NULL,
    PRIMARY KEY (ns, job_name, trig)
);
CREATE INDEX archive_jobs_age ON archive_jobs (ns, archived_at);

CREATE TABLE tasks (
    ns              TEXT    NOT NULL,
    job_name        TEXT    NOT NULL,
    trig            TEXT    NOT NULL,
    task_name       TEXT    NOT NULL,
    step_name       TEXT    NOT NULL,
    type_order      INTEGER NOT NULL,
    position        INTEGER NOT NULL,
    priority        INTEGER NOT NULL,
    state           TEXT    NOT NULL,
    -- 0 while a finished task waits to be folded into its job
    folded          INTEGER NOT NULL DEFAULT 1,
    executor        TEXT    NULL,
    executor_sha    TEXT    NULL,
    picked_times    INTEGER NOT NULL DEFAULT 0,
    tried_times     INTEGER NOT NULL DEFAULT 0,
    after_ms        INTEGER NOT NULL DEFAULT 0,
    lease_owner     TEXT    NULL,
    lease_expiry    INTEGER NULL,
    lease_epoch     INTEGER NOT NULL DEFAULT 0,
    node            TEXT    NULL,
    fuel            INTEGER NULL,
    wall_ms         INTEGER NULL,
    peak_memory     INTEGER NULL,
    start_time      INTEGER NULL,
    finish_time     INTEGER NULL,
    modify_time     INTEGER NOT NULL,
    reason          TEXT    NULL,
    progress        INTEGER NULL,
    checkpoint      BLOB    NULL,
    updated_params  TEXT    NULL,
    updated_configs TEXT    NULL,
    -- the task as created (immutable); the columns above overlay it
    body            TEXT    NOT NULL,
    PRIMARY KEY (ns, job_name, trig, task_name)
);
-- Only claimable tasks are in this index, in pick order (spec §10.3).
CREATE INDEX tasks_claimable ON tasks (ns, priority DESC, job_name, trig, type_order, step_name, position)
    WHERE state = 'UNDONE' AND lease_owner IS NULL;
CREATE INDEX tasks_leased ON tasks (ns, lease_expiry) WHERE lease_owner IS NOT NULL;
CREATE INDEX tasks_unfolded ON tasks (ns, job_name, trig) WHERE folded = 0;
CREATE INDEX tasks_waiting_executor ON tasks (ns, job_name, step_name) WHERE executor IS NULL AND state = 'UNDONE';
CREATE INDEX tasks_state ON tasks (ns, state, job_name, trig);

CREATE TABLE bans (
    ns      TEXT    NOT NULL,
    scope   TEXT    NOT NULL,
    target  TEXT    NOT NULL,
    level   INTEGER NOT NULL,
    PRIMARY KEY (ns, scope, target)
);

CREATE TABLE nodes (
    ns         TEXT    NOT NULL,
    node       TEXT    NOT NULL,
    last_seen  INTEGER NOT NULL,
    PRIMARY KEY (ns, node)
);

CREATE TABLE node_executors (
    ns        TEXT NOT NULL,
    node      TEXT NOT NULL,
    name      TEXT NOT NULL,
    sha256    TEXT NOT NULL,
    bindings  TEXT NOT NULL,
    PRIMARY KEY (ns, node, name)
);

CREATE TABLE blobs (
    sha256  TEXT PRIMARY KEY,
    bytes   BLOB NOT NULL
);

CREATE TABLE uploads (
    ns          TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    sha256      TEXT    NOT NULL REFERENCES blobs (sha256),
    size        INTEGER NOT NULL,
    created_ms  INTEGER NOT NULL,
    PRIMARY KEY (ns, name)
);
