-- Named leases with an epoch (engine/store/leases.py): the replicas' leader.
CREATE TABLE leases (name TEXT PRIMARY KEY, holder TEXT, epoch BIGINT, until_ms BIGINT);
