-- 0001_core: global key/value settings (server secret, mta.*, scheduler state).
-- updated: seconds since the epoch of the last change.
CREATE TABLE settings (
	key TEXT PRIMARY KEY,
	value TEXT NOT NULL,
	updated {{BIGINT}}
);
