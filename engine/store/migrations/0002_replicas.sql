-- Replicas' heartbeats (engine/store/replicas.py) and who holds a claimed event (expand:
-- a new table and a defaulted column, which a replica of the previous version ignores).
CREATE TABLE replicas (
    owner TEXT PRIMARY KEY,
    host TEXT,
    pid INTEGER,
    started_ms BIGINT,
    beat_until_ms BIGINT
);
ALTER TABLE events ADD COLUMN owner TEXT NOT NULL DEFAULT '';
