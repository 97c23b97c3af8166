-- Each event's lane (its target, engine/targets.py), kept at intake; at most one event per
-- lane in processing, across every replica, held by the database itself.
ALTER TABLE events ADD COLUMN lane TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX events_one_per_lane ON events (lane)
    WHERE state = 'processing' AND lane <> '';
CREATE INDEX idx_events_lane_state ON events (lane, state);
