-- One asker of the LLM per failure, across replicas (engine/store/rca.py ``ask``).
CREATE TABLE rca_pending (fingerprint TEXT PRIMARY KEY, holder TEXT, until_ms BIGINT);
