-- The tables of engine/store's modules, as their create_schema makes them on SQLite.
-- Times are milliseconds since the epoch (BIGINT); JSON is kept as text, as on SQLite.

CREATE TABLE events (
    id TEXT PRIMARY KEY,
    dedup_key TEXT NOT NULL,
    received_ms BIGINT NOT NULL,
    endpoint TEXT,
    source TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    resource TEXT,
    run_id TEXT,
    fingerprint TEXT,
    event TEXT NOT NULL,
    enriched TEXT,
    raw TEXT,
    state TEXT NOT NULL DEFAULT 'pending',
    lease_until_ms BIGINT DEFAULT 0,
    attempts INTEGER DEFAULT 0,
    duplicates INTEGER DEFAULT 0,
    error TEXT DEFAULT '',
    reason TEXT NOT NULL DEFAULT '',
    -- the insertion order (SQLite's rowid): the metrics' cursor over new events
    seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE
);
CREATE UNIQUE INDEX idx_events_dedup_key ON events (dedup_key);
CREATE INDEX idx_events_state_lease_until_ms ON events (state, lease_until_ms);
CREATE INDEX idx_events_received_ms ON events (received_ms);
CREATE INDEX idx_events_resource_received_ms ON events (resource, received_ms);
CREATE INDEX idx_events_fingerprint ON events (fingerprint);
CREATE INDEX idx_events_duplicates ON events (duplicates);

CREATE TABLE incidents (
    id TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    target TEXT NOT NULL,
    source TEXT,
    resource TEXT,
    alert_key TEXT DEFAULT '',
    state TEXT NOT NULL,
    reason TEXT DEFAULT '',
    rule_id TEXT DEFAULT '',
    event_id TEXT,
    events INTEGER DEFAULT 1,
    attempts INTEGER DEFAULT 0,
    opened_ms BIGINT,
    updated_ms BIGINT,
    closed_ms BIGINT DEFAULT 0,
    approval_due_ms BIGINT DEFAULT 0,
    event TEXT DEFAULT '',
    notified_state TEXT NOT NULL DEFAULT '',
    notified_ms BIGINT NOT NULL DEFAULT 0,
    notify_attempts INTEGER NOT NULL DEFAULT 0,
    notify_due_ms BIGINT NOT NULL DEFAULT 0,
    notify_error TEXT NOT NULL DEFAULT '',
    matches TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX idx_incidents_fingerprint_target_state ON incidents (fingerprint, target, state);
CREATE INDEX idx_incidents_target_state ON incidents (target, state);
CREATE INDEX idx_incidents_state_approval_due_ms ON incidents (state, approval_due_ms);
CREATE INDEX idx_incidents_notify_due_ms ON incidents (notify_due_ms);
CREATE INDEX idx_incidents_resource_opened_ms ON incidents (resource, opened_ms);
CREATE INDEX idx_incidents_source_opened_ms ON incidents (source, opened_ms);
CREATE INDEX idx_incidents_state_opened_ms ON incidents (state, opened_ms);
CREATE INDEX idx_incidents_opened_ms ON incidents (opened_ms);
CREATE INDEX idx_incidents_closed_ms ON incidents (closed_ms);

CREATE TABLE actions (
    id TEXT PRIMARY KEY,
    idem_key TEXT NOT NULL,
    incident_id TEXT NOT NULL,
    event_id TEXT,
    rule_id TEXT,
    reference TEXT,
    action TEXT NOT NULL,
    "index" INTEGER,
    phase TEXT,
    attempt INTEGER,
    target TEXT,
    fingerprint TEXT,
    state TEXT NOT NULL,
    dry_run INTEGER,
    mutating INTEGER,
    due_ms BIGINT,
    created_ms BIGINT,
    started_ms BIGINT DEFAULT 0,
    finished_ms BIGINT DEFAULT 0,
    owner TEXT DEFAULT '',
    params TEXT,
    description TEXT,
    playbook TEXT,
    playbook_hash TEXT,
    result TEXT DEFAULT '{}',
    external_id TEXT DEFAULT '',
    error TEXT DEFAULT '',
    retries INTEGER DEFAULT 0,
    probe_state TEXT DEFAULT '',
    probe_due_ms BIGINT DEFAULT 0,
    probe_deadline_ms BIGINT DEFAULT 0,
    probe_interval_s DOUBLE PRECISION DEFAULT 0.0
);
CREATE UNIQUE INDEX idx_actions_idem_key ON actions (idem_key);
CREATE INDEX idx_actions_state_due_ms ON actions (state, due_ms);
CREATE INDEX idx_actions_incident_id_attempt ON actions (incident_id, attempt);
CREATE INDEX idx_actions_rule_id_created_ms ON actions (rule_id, created_ms);
CREATE INDEX idx_actions_probe_state_probe_due_ms ON actions (probe_state, probe_due_ms);

CREATE TABLE audit (
    seq BIGINT PRIMARY KEY,
    ts TEXT NOT NULL,
    ts_ms BIGINT,
    incident_id TEXT,
    event_id TEXT,
    kind TEXT NOT NULL,
    actor TEXT,
    resource TEXT,
    data TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX idx_audit_incident_id_seq ON audit (incident_id, seq);
CREATE INDEX idx_audit_resource_seq ON audit (resource, seq);
CREATE INDEX idx_audit_kind_seq ON audit (kind, seq);
CREATE INDEX idx_audit_event_id_seq ON audit (event_id, seq);
CREATE TABLE audit_head (id INTEGER PRIMARY KEY, seq BIGINT, hash TEXT);

CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END
$$;
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();

CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT, updated_ms BIGINT);
CREATE TABLE circuit_breakers (
    rule_id TEXT NOT NULL,
    target TEXT NOT NULL,
    failures INTEGER DEFAULT 0,
    open INTEGER DEFAULT 0,
    opened_ms BIGINT DEFAULT 0,
    until_ms BIGINT DEFAULT 0,
    updated_ms BIGINT DEFAULT 0,
    PRIMARY KEY (rule_id, target)
);
CREATE INDEX idx_circuit_breakers_open_opened_ms ON circuit_breakers (open, opened_ms);
CREATE TABLE target_locks (target TEXT PRIMARY KEY, holder TEXT, until_ms BIGINT);

CREATE TABLE metric_counts (
    series TEXT, labels TEXT, value DOUBLE PRECISION, last_ms BIGINT,
    PRIMARY KEY (series, labels)
);
CREATE TABLE metric_cursors (name TEXT PRIMARY KEY, last BIGINT);

CREATE TABLE rca_cache (
    fingerprint TEXT PRIMARY KEY, analysis TEXT NOT NULL, created_ms BIGINT NOT NULL
);
CREATE TABLE rca_budget (hour BIGINT PRIMARY KEY, calls INTEGER);
