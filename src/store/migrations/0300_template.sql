-- 0300_template: message templates customised per owner (F-TPL-1). Owned by
-- src/template/. owner: "user:a@x.com", "domain:x.com", "wildcard:*.x.com" or
-- "global" (the policy module's owner strings); name: a template of the
-- catalogue in template.h ("encryption_failed", ...); body: the template text
-- (UTF-8, validated when saved); updated: seconds since the epoch. A template
-- without a row for any owner of a chain uses its factory default (built in).
CREATE TABLE template (
	owner TEXT NOT NULL,
	name TEXT NOT NULL,
	body TEXT NOT NULL,
	updated {{BIGINT}} NOT NULL,
	PRIMARY KEY (owner, name)
);
