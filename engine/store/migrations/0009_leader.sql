-- When the leader lease's holder last began a leader-only job (engine/store/leases.py
-- mark_tick): that the leader's work runs, not only that the lease is held.
ALTER TABLE leases ADD COLUMN IF NOT EXISTS ticked_ms BIGINT NOT NULL DEFAULT 0;
