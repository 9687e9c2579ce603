-- 0500_ca: the built-in certificate authority (src/ca/). Certificates and keys
-- live in the PKI tables (0200); these tables name the CAs, keep the serials
-- revoked by each CA's CRL and the queue of delayed certificate requests.
-- Names and common names are stored lower-cased where they must be unique.
CREATE TABLE ca (
	name_lc TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	root_thumbprint TEXT NOT NULL,
	inter_thumbprint TEXT NOT NULL,
	key_type TEXT NOT NULL,
	sig_md TEXT NOT NULL,
	crl_number {{BIGINT}} NOT NULL DEFAULT 0,
	created {{BIGINT}} NOT NULL
);
-- Common names used by CA certificates (unique across all CAs, guide §12.1).
CREATE TABLE ca_cn (
	cn_lc TEXT PRIMARY KEY,
	ca_name_lc TEXT NOT NULL
);
CREATE TABLE ca_revoked (
	ca_name_lc TEXT NOT NULL,
	serial TEXT NOT NULL,
	revoked_at {{BIGINT}} NOT NULL,
	PRIMARY KEY (ca_name_lc, serial)
);
CREATE TABLE ca_request (
	id {{SERIAL_PK}},
	email TEXT NOT NULL,
	cn TEXT NOT NULL,
	org TEXT,
	first_name TEXT,
	last_name TEXT,
	ca_name TEXT,
	handler TEXT NOT NULL,
	state TEXT NOT NULL,
	attempts {{BIGINT}} NOT NULL DEFAULT 0,
	last_error TEXT,
	thumbprint TEXT,
	created {{BIGINT}} NOT NULL,
	updated {{BIGINT}} NOT NULL
);
CREATE INDEX ca_request_state ON ca_request (state, id);
CREATE INDEX ca_request_email ON ca_request (email, state);
