-- 0200_pki: certificate store + roots, e-mail index, private keys (encrypted),
-- CRLs and their entries, the certificate trust list, certificate selections.
-- Owned by src/pki/. Times are seconds since the epoch; serials lower-case hex;
-- thumbprints SHA-512 of the DER, lower-case hex (the primary key).
CREATE TABLE pki_cert (
	thumbprint TEXT PRIMARY KEY,
	der {{BLOB}} NOT NULL,
	subject TEXT NOT NULL,
	issuer TEXT NOT NULL,
	serial TEXT NOT NULL,
	subject_hash TEXT NOT NULL,
	issuer_hash TEXT NOT NULL,
	not_before {{BIGINT}} NOT NULL,
	not_after {{BIGINT}} NOT NULL,
	is_root INTEGER NOT NULL DEFAULT 0,
	is_ca INTEGER NOT NULL DEFAULT 0,
	has_key INTEGER NOT NULL DEFAULT 0,
	created {{BIGINT}} NOT NULL
);
CREATE INDEX pki_cert_subject_hash ON pki_cert (subject_hash);
CREATE INDEX pki_cert_issuer_serial ON pki_cert (issuer_hash, serial);
CREATE INDEX pki_cert_root ON pki_cert (is_root, thumbprint);
-- One row per (lower-cased address, certificate): the indexed e-mail lookup.
CREATE TABLE pki_cert_email (
	email TEXT NOT NULL,
	thumbprint TEXT NOT NULL REFERENCES pki_cert (thumbprint) ON DELETE CASCADE,
	PRIMARY KEY (email, thumbprint)
);
CREATE INDEX pki_cert_email_thumb ON pki_cert_email (thumbprint);
-- Private keys: AES-256-GCM(KEK, PKCS#8 DER), AAD = thumbprint. See pki_key.c.
CREATE TABLE pki_key (
	thumbprint TEXT PRIMARY KEY REFERENCES pki_cert (thumbprint) ON DELETE CASCADE,
	enc {{BLOB}} NOT NULL,
	created {{BIGINT}} NOT NULL
);
-- The newest CRL per (issuer name hash, authority key id).
CREATE TABLE pki_crl (
	id {{SERIAL_PK}},
	thumbprint TEXT NOT NULL UNIQUE,
	issuer TEXT NOT NULL,
	issuer_hash TEXT NOT NULL,
	akid TEXT NOT NULL,
	crl_number TEXT NOT NULL,
	this_update {{BIGINT}} NOT NULL,
	next_update {{BIGINT}} NOT NULL,
	n_entries {{BIGINT}} NOT NULL,
	signer TEXT,
	der {{BLOB}} NOT NULL,
	source TEXT NOT NULL,
	created {{BIGINT}} NOT NULL
);
CREATE INDEX pki_crl_issuer ON pki_crl (issuer_hash, akid);
CREATE TABLE pki_crl_entry (
	crl_id {{BIGINT}} NOT NULL REFERENCES pki_crl (id) ON DELETE CASCADE,
	serial TEXT NOT NULL,
	revoked_at {{BIGINT}} NOT NULL,
	reason INTEGER NOT NULL,
	PRIMARY KEY (crl_id, serial)
);
-- CRL distribution points seen in imported certificates, with retry state.
CREATE TABLE pki_cdp (
	url TEXT PRIMARY KEY,
	last_success {{BIGINT}} NOT NULL DEFAULT 0,
	failures INTEGER NOT NULL DEFAULT 0,
	next_try {{BIGINT}} NOT NULL DEFAULT 0,
	last_error TEXT NOT NULL DEFAULT ''
);
-- Certificate trust list: by thumbprint; the certificate need not be stored.
CREATE TABLE pki_ctl (
	thumbprint TEXT PRIMARY KEY,
	kind TEXT NOT NULL,
	allow_expired INTEGER NOT NULL DEFAULT 0,
	created {{BIGINT}} NOT NULL
);
-- Selections by (owner_kind, owner_name): owner_kind user|domain|global,
-- owner_name the address, the domain ("*.x.com" for a wildcard) or "" for
-- global. Users and domains belong to the policy module: no foreign key.
-- kind encrypt|sign|additional (at most one sign per owner, enforced by pki).
CREATE TABLE pki_selection (
	owner_kind TEXT NOT NULL,
	owner_name TEXT NOT NULL,
	kind TEXT NOT NULL,
	thumbprint TEXT NOT NULL,
	created {{BIGINT}} NOT NULL,
	PRIMARY KEY (owner_kind, owner_name, kind, thumbprint)
);
CREATE INDEX pki_selection_thumb ON pki_selection (thumbprint);
