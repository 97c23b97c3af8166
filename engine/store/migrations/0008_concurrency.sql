-- Write transactions of several replicas run side by side (engine/store/locks.py): at most
-- one active incident per (fingerprint, target), which open_or_join's INSERT ... ON CONFLICT
-- meets (engine/store/transitions.py). The states are engine/store/incidents.py's
-- ACTIVE_STATES. Expand only: the previous version, which opens incidents under its writer
-- lock, never makes a second one either.
CREATE UNIQUE INDEX incidents_one_active ON incidents (fingerprint, target)
    WHERE state IN ('open', 'remediating', 'waiting_approval', 'verifying');
