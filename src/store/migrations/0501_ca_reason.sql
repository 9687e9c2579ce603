-- 0501_ca_reason: an RFC 5280 CRLReason per revoked serial of a built-in CA
-- (-1 = no reasonCode extension in the CRL entry).
ALTER TABLE ca_revoked ADD COLUMN reason {{BIGINT}} NOT NULL DEFAULT -1;
