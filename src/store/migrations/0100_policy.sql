-- 0100_policy: users, domains (plain "example.com" and wildcard "*.example.com"),
-- the properties set on them and on the global level, and a generation counter.
-- Owned by src/policy/. Names are stored normalised (lower case, IDN labels in
-- punycode), so equality is exact on both backends. Times: seconds since the
-- epoch.
CREATE TABLE policy_user (
	email TEXT PRIMARY KEY,
	domain TEXT NOT NULL,
	created {{BIGINT}} NOT NULL
);
-- "a domain with users cannot be deleted" and per-domain listings.
CREATE INDEX policy_user_domain ON policy_user (domain);
CREATE TABLE policy_domain (
	name TEXT PRIMARY KEY,
	created {{BIGINT}} NOT NULL
);
-- owner: "user:a@x.com", "domain:x.com", "wildcard:*.x.com" or "global" (the
-- same strings pki_selection uses). name: a property of SPEC §11; value: its
-- normalised text form as policy_prop_validate() wrote it.
CREATE TABLE policy_prop (
	owner TEXT NOT NULL,
	name TEXT NOT NULL,
	value TEXT NOT NULL,
	updated {{BIGINT}} NOT NULL,
	PRIMARY KEY (owner, name)
);
-- One row; every change to the three tables above increments gen in the same
-- transaction, so resolvers in other threads/processes drop their caches.
CREATE TABLE policy_generation (
	id INTEGER PRIMARY KEY,
	gen {{BIGINT}} NOT NULL
);
INSERT INTO policy_generation (id, gen) VALUES (1, 0);
