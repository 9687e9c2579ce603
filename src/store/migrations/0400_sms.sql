-- 0400_sms: the SMS queue (SPEC F-SMS-1). Owned by src/sms/ (range 0400-0499).
-- status: queued | sending | failed (a sent message is deleted: its text
-- usually holds a password). Times are seconds since the epoch; lease_until
-- is when a "sending" claim expires (a crashed sender's message is retried).
CREATE TABLE sms_queue (
	id {{SERIAL_PK}},
	phone TEXT NOT NULL,
	text TEXT NOT NULL,
	ref TEXT,
	status TEXT NOT NULL DEFAULT 'queued',
	attempts INTEGER NOT NULL DEFAULT 0,
	created {{BIGINT}} NOT NULL,
	next_attempt {{BIGINT}} NOT NULL,
	lease_until {{BIGINT}} NOT NULL DEFAULT 0,
	updated {{BIGINT}} NOT NULL,
	last_error TEXT
);
CREATE INDEX sms_queue_due ON sms_queue (status, next_attempt);
