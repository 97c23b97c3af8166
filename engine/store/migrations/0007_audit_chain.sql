-- The audit chain without the writer lock (engine/store/audit.py): writers insert unchained
-- records (seq from a sequence, prev_hash/hash/chain NULL), the leader links them later,
-- giving each its chain position (chain) under the head row. Existing records were linked in
-- seq order, so their position is their seq (filled in below, the only UPDATE ever allowed
-- besides the link itself).
CREATE SEQUENCE audit_seq_seq OWNED BY audit.seq;
SELECT setval('audit_seq_seq', COALESCE((SELECT max(seq) FROM audit), 0) + 1, false);
ALTER TABLE audit ALTER COLUMN seq SET DEFAULT nextval('audit_seq_seq');
ALTER TABLE audit ALTER COLUMN prev_hash DROP NOT NULL;
ALTER TABLE audit ALTER COLUMN hash DROP NOT NULL;
ALTER TABLE audit ADD COLUMN chain BIGINT;
ALTER TABLE audit ADD COLUMN added_ms BIGINT
    DEFAULT CAST(extract(epoch FROM clock_timestamp()) * 1000 AS BIGINT);
ALTER TABLE audit_head ADD COLUMN chain BIGINT;

ALTER TABLE audit DISABLE TRIGGER audit_no_update;
UPDATE audit SET chain = seq;
ALTER TABLE audit ENABLE TRIGGER audit_no_update;
UPDATE audit_head SET chain = seq;

CREATE UNIQUE INDEX idx_audit_chain ON audit (chain);
CREATE INDEX idx_audit_unlinked ON audit (seq) WHERE hash IS NULL;

-- The one UPDATE the log allows: linking an unlinked record (its chain columns set once, from
-- NULL, nothing else changed). Every other UPDATE, and every DELETE, is still refused.
CREATE FUNCTION audit_link_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.hash IS NULL AND OLD.prev_hash IS NULL AND OLD.chain IS NULL
       AND NEW.hash IS NOT NULL AND NEW.prev_hash IS NOT NULL AND NEW.chain IS NOT NULL
       AND (NEW.seq, NEW.ts, NEW.ts_ms, NEW.incident_id, NEW.event_id, NEW.kind, NEW.actor,
            NEW.resource, NEW.data, NEW.added_ms)
           IS NOT DISTINCT FROM
           (OLD.seq, OLD.ts, OLD.ts_ms, OLD.incident_id, OLD.event_id, OLD.kind, OLD.actor,
            OLD.resource, OLD.data, OLD.added_ms) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'the audit log is append-only';
END
$$;
DROP TRIGGER audit_no_update ON audit;
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_link_only();

-- A record is written unlinked. A replica of a release before this file links its own
-- records from audit_head, which would put them beside the chain: its writes are refused
-- (its events are retried by the new replicas) until it is replaced.
CREATE FUNCTION audit_written_unlinked() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.hash IS NOT NULL OR NEW.prev_hash IS NOT NULL OR NEW.chain IS NOT NULL THEN
        RAISE EXCEPTION 'an audit record is written unlinked and linked by the leader '
            '(migration 0007): a replica of an older release wrote it; replace that replica';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER audit_unlinked BEFORE INSERT ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_written_unlinked();
