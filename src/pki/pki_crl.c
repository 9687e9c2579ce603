/*
 * pki_crl.c - the CRL store (SPEC F-PKI-5, RFC 5280 §5): import (DER/PEM),
 * signature check against the issuer certificate when known (or, for CRLs
 * from hostile input, PKI_CRL_IMPORT_TRUSTED_ISSUER: only with a valid
 * issuer certificate - F-SMIME-4 CRLs carried in signatures), the newest CRL
 * per (issuer name, authority key id), entries in an indexed table so a
 * revocation lookup is one B-tree probe (O(log n)) even with a million
 * entries, and download from the distribution points of stored certificates
 * over HTTP(S)/LDAP with libcurl (through a proxy), with backoff on failure.
 *
 * Any thread, own struct pki. Downloads block (run them from the scheduler or
 * the CLI, never from an SMTP event loop). Every import bumps the verdict
 * generation. Delta CRLs and indirect CRLs are refused (XXX: not supported).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "pki/pki_int.h"

#define PKI_CRL_INTERVAL (12 * 3600)
#define PKI_CRL_BACKOFF_MIN 300
#define PKI_CDP_URL_MAX 1024
#define PKI_CDP_UPDATE_MAX 10000

static const char *const crl_reasons[] = {
	"unspecified", "keyCompromise", "cACompromise", "affiliationChanged", "superseded",
	"cessationOfOperation", "certificateHold", "7", "removeFromCRL",
	"privilegeWithdrawn", "aACompromise",
};

const char *pki_crl_reason_name(int reason)
{
	if (reason < 0 || (size_t)reason >= sizeof(crl_reasons) / sizeof(crl_reasons[0]))
		return "unspecified";
	return crl_reasons[reason];
}

void pki_crl_akid_hex(const X509_CRL *crl, char *out, size_t outsz)
{
	AUTHORITY_KEYID *ak = X509_CRL_get_ext_d2i(crl, NID_authority_key_identifier, NULL,
		NULL);

	out[0] = '\0';
	if (ak != NULL && ak->keyid != NULL && (size_t)ak->keyid->length * 2 + 1 <= outsz)
		sg_hex(out, ak->keyid->data, (size_t)ak->keyid->length);
	AUTHORITY_KEYID_free(ak);
}

/* skid_hex - subject key identifier of x as hex ("" if none) */
static void skid_hex(X509 *x, char *out, size_t outsz)
{
	const ASN1_OCTET_STRING *k = X509_get0_subject_key_id(x);

	out[0] = '\0';
	if (k != NULL && (size_t)k->length * 2 + 1 <= outsz)
		sg_hex(out, k->data, (size_t)k->length);
}

/* crl_parse - DER or PEM, whole input; NULL + SG_E_PARSE */
static X509_CRL *crl_parse(const void *data, size_t len, struct sg_error *err)
{
	const unsigned char *p = data;
	X509_CRL *crl = NULL;

	if (len == 0 || len > PKI_CRL_MAX) {
		sg_error_set(err, SG_E_PARSE, "CRL: bad length %zu", len);
		return NULL;
	}
	if (memmem(data, len, "-----BEGIN X509 CRL-----", 24) != NULL) {
		BIO *b = BIO_new_mem_buf(data, (int)len);

		crl = b != NULL ? PEM_read_bio_X509_CRL(b, NULL, NULL, NULL) : NULL;
		BIO_free(b);
	} else {
		crl = d2i_X509_CRL(NULL, &p, (long)len);
		if (crl != NULL && p != (const unsigned char *)data + len) {
			X509_CRL_free(crl);
			sg_error_set(err, SG_E_PARSE, "CRL: trailing bytes after DER");
			return NULL;
		}
	}
	if (crl == NULL)
		sg_error_set_openssl(err, SG_E_PARSE, "CRL: not a DER or PEM CRL");
	return crl;
}

/* crl_number_hex - the cRLNumber extension ("" if absent) */
static void crl_number_hex(X509_CRL *crl, char *out, size_t outsz)
{
	ASN1_INTEGER *n = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
	char *h = n != NULL ? pki_serial_hex(n) : NULL;

	sg_strlcpy(out, h != NULL ? h : "", outsz);
	free(h);
	ASN1_INTEGER_free(n);
}

/* find_signer - a stored issuer certificate whose key verifies crl: 1 found
 * (thumbprint in signer), 0 no candidate, 2 candidates but none verifies, -1 */
static int find_signer(struct pki *pki, X509_CRL *crl, const char *akid, char *signer,
	struct sg_error *err)
{
	const X509_NAME *iss = X509_CRL_get_issuer(crl);
	struct store_stmt *st;
	char h[9], sk[130];
	int r, rc = 0;

	pki_name_hash(iss, h);
	st = store_prepare(pki->db, "SELECT thumbprint, der FROM pki_cert WHERE "
		"subject_hash = ? LIMIT 16", err);
	if (st == NULL)
		return -1;
	store_bind_text(st, 1, h);
	while ((r = store_stmt_step(st, err)) == 1) {
		size_t len = 0;
		const unsigned char *der = store_col_blob(st, 1, &len);
		X509 *x = d2i_X509(NULL, &der, (long)len);

		if (x == NULL || X509_NAME_cmp(X509_get_subject_name(x), iss) != 0) {
			X509_free(x);
			continue;
		}
		skid_hex(x, sk, sizeof(sk));
		if (akid[0] != '\0' && sk[0] != '\0' && strcmp(akid, sk) != 0) {
			X509_free(x);
			continue;
		}
		rc = 2;
		if (X509_CRL_verify(crl, X509_get0_pubkey(x)) == 1) {
			sg_strlcpy(signer, store_col_text(st, 0), PKI_THUMBPRINT_LEN + 1);
			rc = 1;
		}
		X509_free(x);
		if (rc == 1)
			break;
	}
	ERR_clear_error();
	store_stmt_free(&st);
	return r < 0 ? -1 : rc;
}

/* info_from_crl - the parsed facts of crl */
static void info_from_crl(X509_CRL *crl, const void *der, size_t len,
	struct pki_crl_info *i)
{
	char *iss = pki_name_str(X509_CRL_get_issuer(crl));
	STACK_OF(X509_REVOKED) *rev = X509_CRL_get_REVOKED(crl);

	memset(i, 0, sizeof(*i));
	pki_thumbprint(der, len, i->thumbprint);
	sg_strlcpy(i->issuer, iss, sizeof(i->issuer));
	free(iss);
	crl_number_hex(crl, i->crl_number, sizeof(i->crl_number));
	i->this_update = pki_asn1_time(X509_CRL_get0_lastUpdate(crl));
	i->next_update = X509_CRL_get0_nextUpdate(crl) != NULL ?
		pki_asn1_time(X509_CRL_get0_nextUpdate(crl)) : 0;
	i->n_entries = rev != NULL ? sk_X509_REVOKED_num(rev) : 0;
}

/* is_newer - compare by cRLNumber when both have one, else thisUpdate */
static bool is_newer(const struct pki_crl_info *n, const char *old_num, int64_t old_this)
{
	size_t a = strlen(n->crl_number), b = strlen(old_num);

	if (a > 0 && b > 0) {
		if (a != b)
			return a > b;
		return strcmp(n->crl_number, old_num) > 0;
	}
	return n->this_update > old_this;
}

/* existing - the stored CRL for the same issuer: 1 (id, number, this), 0, -1 */
static int existing(struct pki *pki, const char *h, const char *akid, const char *issuer,
	int64_t *id_r, char *num, int64_t *this_r, struct sg_error *err)
{
	struct store_stmt *st;
	int r;

	st = store_prepare(pki->db, "SELECT id, crl_number, this_update, issuer FROM pki_crl "
		"WHERE issuer_hash = ? AND akid = ?", err);
	if (st == NULL)
		return -1;
	store_bind_text(st, 1, h);
	store_bind_text(st, 2, akid);
	while ((r = store_stmt_step(st, err)) == 1) {
		if (strcmp(store_col_text(st, 3), issuer) != 0)
			continue;
		*id_r = store_col_int64(st, 0);
		sg_strlcpy(num, store_col_text(st, 1), 80);
		*this_r = store_col_int64(st, 2);
		break;
	}
	store_stmt_free(&st);
	return r;
}

/* exec1 - one statement with one int64 bind */
static int exec1(struct pki *pki, const char *sql, int64_t v, struct sg_error *err)
{
	struct store_stmt *st = store_prepare(pki->db, sql, err);
	int rc;

	if (st == NULL)
		return -1;
	store_bind_int64(st, 1, v);
	rc = store_stmt_step(st, err) < 0 ? -1 : 0;
	store_stmt_free(&st);
	return rc;
}

/* crl_delete_id - entries then the row */
static int crl_delete_id(struct pki *pki, int64_t id, struct sg_error *err)
{
	if (exec1(pki, "DELETE FROM pki_crl_entry WHERE crl_id = ?", id, err) < 0)
		return -1;
	return exec1(pki, "DELETE FROM pki_crl WHERE id = ?", id, err);
}

/* insert_entries - every revoked serial, duplicates ignored */
static int insert_entries(struct pki *pki, X509_CRL *crl, int64_t id, struct sg_error *err)
{
	STACK_OF(X509_REVOKED) *rev = X509_CRL_get_REVOKED(crl);
	struct store_stmt *st;
	int i, rc = -1;

	st = store_prepare(pki->db, "INSERT INTO pki_crl_entry (crl_id, serial, revoked_at, "
		"reason) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING", err);
	if (st == NULL)
		return -1;
	for (i = 0; rev != NULL && i < sk_X509_REVOKED_num(rev); i++) {
		X509_REVOKED *r = sk_X509_REVOKED_value(rev, i);
		ASN1_ENUMERATED *re = X509_REVOKED_get_ext_d2i(r, NID_crl_reason, NULL, NULL);
		char *serial = pki_serial_hex(X509_REVOKED_get0_serialNumber(r));
		long reason = re != NULL ? ASN1_ENUMERATED_get(re) : 0;

		ASN1_ENUMERATED_free(re);
		if (serial == NULL) {
			sg_error_set(err, SG_E_PARSE, "CRL: bad serial in entry %d", i);
			goto out;
		}
		store_stmt_reset(st);
		store_bind_int64(st, 1, id);
		store_bind_text(st, 2, serial);
		store_bind_int64(st, 3, pki_asn1_time(X509_REVOKED_get0_revocationDate(r)));
		store_bind_int64(st, 4, reason < 0 || reason > 10 ? 0 : reason);
		free(serial);
		if (store_stmt_step(st, err) < 0)
			goto out;
	}
	rc = 0;
out:
	store_stmt_free(&st);
	return rc;
}

/* crl_insert - the pki_crl row; its id into *id_r */
static int crl_insert(struct pki *pki, const struct pki_crl_info *i, const char *h,
	const char *akid, const void *der, size_t len, int64_t *id_r, struct sg_error *err)
{
	struct store_stmt *st;
	int r;

	st = store_prepare(pki->db, "INSERT INTO pki_crl (thumbprint, issuer, issuer_hash, "
		"akid, crl_number, this_update, next_update, n_entries, signer, der, source, "
		"created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", err);
	if (st == NULL)
		return -1;
	store_bind_text(st, 1, i->thumbprint);
	store_bind_text(st, 2, i->issuer);
	store_bind_text(st, 3, h);
	store_bind_text(st, 4, akid);
	store_bind_text(st, 5, i->crl_number);
	store_bind_int64(st, 6, i->this_update);
	store_bind_int64(st, 7, i->next_update);
	store_bind_int64(st, 8, i->n_entries);
	store_bind_text(st, 9, i->signer[0] ? i->signer : NULL);
	store_bind_blob(st, 10, der, len);
	store_bind_text(st, 11, i->source);
	store_bind_int64(st, 12, sg_now());
	r = store_stmt_step(st, err);
	store_stmt_free(&st);
	if (r < 0)
		return -1;
	st = store_prepare(pki->db, "SELECT id FROM pki_crl WHERE thumbprint = ?", err);
	if (st == NULL)
		return -1;
	store_bind_text(st, 1, i->thumbprint);
	r = store_stmt_step(st, err);
	if (r == 1)
		*id_r = store_col_int64(st, 0);
	else if (r == 0)
		sg_error_set(err, SG_E_STORE, "CRL row vanished after insert");
	store_stmt_free(&st);
	return r == 1 ? 0 : -1;
}

/* signer_valid - PKI_CRL_IMPORT_TRUSTED_ISSUER: the verified issuer
 * certificate (thumbprint) is valid now as a CRL issuer; 0 or -1 with err */
static int signer_valid(struct pki *pki, const char *thumbprint, const char *issuer,
	struct sg_error *err)
{
	struct pki_cert *c = NULL;
	struct pki_verdict v;
	int r;

	r = pki_cert_get(pki, thumbprint, &c, err);
	if (r <= 0) {
		if (r == 0)
			sg_error_set(err, SG_E_NOTFOUND, "CRL of %s: issuer certificate vanished",
				issuer);
		return -1;
	}
	r = pki_cert_verify(pki, c, PKI_PURPOSE_CRL_SIGN, 0, 0, &v, err);
	pki_cert_free(&c);
	if (r < 0)
		return -1;
	if (!v.is_valid) {
		sg_error_set(err, SG_E_POLICY, "CRL of %s: issuer certificate not valid: %s",
			issuer, v.reason);
		return -1;
	}
	return 0;
}

int pki_crl_import(struct pki *pki, const void *data, size_t len, const char *source,
	struct pki_crl_info *info_r, struct sg_error *err)
{
	return pki_crl_import_ex(pki, data, len, source, 0, info_r, err);
}

int pki_crl_import_ex(struct pki *pki, const void *data, size_t len, const char *source,
	unsigned flags, struct pki_crl_info *info_r, struct sg_error *err)
{
	struct pki_crl_info info;
	X509_CRL *crl = NULL;
	unsigned char *der = NULL;
	char h[9], akid[130], old_num[80];
	int64_t old_id = 0, old_this = 0, id = 0;
	int dlen, r, rc = -1;
	bool own = false;

	crl = crl_parse(data, len, err);
	if (crl == NULL)
		return -1;
	if (X509_CRL_get_ext_by_NID(crl, NID_delta_crl, -1) >= 0) {
		sg_error_set(err, SG_E_INVAL, "CRL: delta CRLs are not supported");
		goto done;
	}
	dlen = i2d_X509_CRL(crl, &der);
	if (dlen <= 0) {
		sg_error_set_openssl(err, SG_E_PARSE, "CRL: cannot encode");
		goto done;
	}
	info_from_crl(crl, der, (size_t)dlen, &info);
	if (info.this_update < 0 || info.next_update < 0) {
		sg_error_set(err, SG_E_PARSE, "CRL: bad thisUpdate/nextUpdate");
		goto done;
	}
	sg_strlcpy(info.source, source != NULL ? source : "import", sizeof(info.source));
	pki_name_hash(X509_CRL_get_issuer(crl), h);
	pki_crl_akid_hex(crl, akid, sizeof(akid));
	if (pki_tx_begin(pki, &own, err) < 0)
		goto done;
	r = find_signer(pki, crl, akid, info.signer, err);
	if (r < 0)
		goto out;
	if (r == 2) {
		sg_error_set(err, SG_E_CRYPTO, "CRL of %s: signature does not verify with the "
			"issuer certificate", info.issuer);
		goto out;
	}
	if ((flags & PKI_CRL_IMPORT_TRUSTED_ISSUER) != 0) {
		if (r == 0) {
			sg_error_set(err, SG_E_NOTFOUND, "CRL of %s: no issuer certificate in the "
				"store", info.issuer);
			goto out;
		}
		if (signer_valid(pki, info.signer, info.issuer, err) < 0)
			goto out;
	}
	r = existing(pki, h, akid, info.issuer, &old_id, old_num, &old_this, err);
	if (r < 0)
		goto out;
	if (r == 1 && !is_newer(&info, old_num, old_this)) {
		rc = PKI_CRL_OLDER;
		if (info_r != NULL && pki_crl_get(pki, old_id, info_r, err) < 0)
			rc = -1;
		goto out;
	}
	if (r == 1 && crl_delete_id(pki, old_id, err) < 0)
		goto out;
	if (crl_insert(pki, &info, h, akid, der, (size_t)dlen, &id, err) < 0)
		goto out;
	if (insert_entries(pki, crl, id, err) < 0)
		goto out;
	if (pki_generation_bump(pki, err) < 0)
		goto out;
	info.id = id;
	if (info_r != NULL)
		*info_r = info;
	rc = PKI_CRL_ADDED;
out:
	rc = pki_tx_end(pki, own, rc, err);
done:
	OPENSSL_free(der);
	X509_CRL_free(crl);
	return rc;
}

#define CRL_COLS "id, thumbprint, issuer, crl_number, this_update, next_update, " \
	"n_entries, signer, source"

/* row_info - fill i from CRL_COLS */
static void row_info(struct store_stmt *st, struct pki_crl_info *i)
{
	memset(i, 0, sizeof(*i));
	i->id = store_col_int64(st, 0);
	sg_strlcpy(i->thumbprint, store_col_text(st, 1), sizeof(i->thumbprint));
	sg_strlcpy(i->issuer, store_col_text(st, 2), sizeof(i->issuer));
	sg_strlcpy(i->crl_number, store_col_text(st, 3), sizeof(i->crl_number));
	i->this_update = store_col_int64(st, 4);
	i->next_update = store_col_int64(st, 5);
	i->n_entries = store_col_int64(st, 6);
	if (!store_col_is_null(st, 7))
		sg_strlcpy(i->signer, store_col_text(st, 7), sizeof(i->signer));
	sg_strlcpy(i->source, store_col_text(st, 8), sizeof(i->source));
}

int pki_crl_list(struct pki *pki, pki_crl_cb *cb, void *arg, struct sg_error *err)
{
	struct pki_crl_info i;
	struct store_stmt *st;
	int r;

	st = store_prepare(pki->db, "SELECT " CRL_COLS " FROM pki_crl ORDER BY issuer, id", err);
	if (st == NULL)
		return -1;
	while ((r = store_stmt_step(st, err)) == 1) {
		row_info(st, &i);
		r = cb(&i, arg, err);
		if (r != 0)
			break;
	}
	store_stmt_free(&st);
	return r < 0 ? -1 : 0;
}

int pki_crl_get(struct pki *pki, int64_t id, struct pki_crl_info *i_r, struct sg_error *err)
{
	struct store_stmt *st;
	int r;

	st = store_prepare(pki->db, "SELECT " CRL_COLS " FROM pki_crl WHERE id = ?", err);
	if (st == NULL)
		return -1;
	store_bind_int64(st, 1, id);
	r = store_stmt_step(st, err);
	if (r == 1)
		row_info(st, i_r);
	store_stmt_free(&st);
	return r;
}

int pki_crl_entries(struct pki *pki, int64_t id, pki_crl_entry_cb *cb, void *arg,
	struct sg_error *err)
{
	struct store_stmt *st;
	int r;

	st = store_prepare(pki->db, "SELECT serial, revoked_at, reason FROM pki_crl_entry "
		"WHERE crl_id = ? ORDER BY serial", err);
	if (st == NULL)
		return -1;
	store_bind_int64(st, 1, id);
	while ((r = store_stmt_step(st, err)) == 1) {
		r = cb(store_col_text(st, 0), store_col_int64(st, 1),
			(int)store_col_int64(st, 2), arg, err);
		if (r != 0)
			break;
	}
	store_stmt_free(&st);
	return r < 0 ? -1 : 0;
}

int pki_crl_delete(struct pki *pki, int64_t id, struct sg_error *err)
{
	struct pki_crl_info i;
	bool own = false;
	int rc = -1, r;

	if (pki_tx_begin(pki, &own, err) < 0)
		return -1;
	r = pki_crl_get(pki, id, &i, err);
	if (r <= 0) {
		if (r == 0)
			sg_error_set(err, SG_E_NOTFOUND, "no CRL with id %lld", (long long)id);
		goto out;
	}
	if (crl_delete_id(pki, id, err) < 0 || pki_generation_bump(pki, err) < 0)
		goto out;
	rc = 0;
out:
	return pki_tx_end(pki, own, rc, err);
}

/* ------------------------------------------------------- revocation check */

/* crl_signed_by - ensure CRL id is signed by issuer (verify once, remember) */
static int crl_signed_by(struct pki *pki, int64_t id, const char *signer, X509 *issuer,
	struct sg_error *err)
{
	char t[PKI_THUMBPRINT_LEN + 1];
	struct store_stmt *st;
	X509_CRL *crl = NULL;
	int r, ok = 0;

	pki_x509_thumbprint(issuer, t);
	if (signer != NULL && strcmp(signer, t) == 0)
		return 1;
	st = store_prepare(pki->db, "SELECT der FROM pki_crl WHERE id = ?", err);
	if (st == NULL)
		return -1;
	store_bind_int64(st, 1, id);
	r = store_stmt_step(st, err);
	if (r == 1) {
		size_t len = 0;
		const unsigned char *der = store_col_blob(st, 0, &len);

		crl = d2i_X509_CRL(NULL, &der, (long)len);
		ok = crl != NULL && X509_CRL_verify(crl, X509_get0_pubkey(issuer)) == 1;
		ERR_clear_error();
	}
	store_stmt_free(&st);
	X509_CRL_free(crl);
	if (r < 0)
		return -1;
	if (!ok)
		return 0;
	/* Remember the verified signer; best effort (a read-only caller may fail). */
	st = store_prepare(pki->db, "UPDATE pki_crl SET signer = ? WHERE id = ?", err);
	if (st != NULL) {
		store_bind_text(st, 1, t);
		store_bind_int64(st, 2, id);
		store_stmt_step(st, NULL);
	}
	store_stmt_free(&st);
	return 1;
}

/* entry_lookup - 1 revoked (date, reason), 0 not listed, -1 */
static int entry_lookup(struct pki *pki, int64_t id, const char *serial, int64_t *at_r,
	int *reason_r, struct sg_error *err)
{
	struct store_stmt *st;
	int r;

	st = store_prepare(pki->db, "SELECT revoked_at, reason FROM pki_crl_entry WHERE "
		"crl_id = ? AND serial = ?", err);
	if (st == NULL)
		return -1;
	store_bind_int64(st, 1, id);
	store_bind_text(st, 2, serial);
	r = store_stmt_step(st, err);
	if (r == 1) {
		*at_r = store_col_int64(st, 0);
		*reason_r = (int)store_col_int64(st, 1);
	}
	store_stmt_free(&st);
	return r;
}

struct crl_row {
	int64_t id, this_update, next_update;
	char akid[130];
	char signer[PKI_THUMBPRINT_LEN + 1];
	char issuer[512];
};

/* crl_rows - the CRLs stored for issuer's subject name (at most 4) */
static int crl_rows(struct pki *pki, X509 *issuer, struct crl_row *rows, int max,
	struct sg_error *err)
{
	char h[9], sk[130], *subj;
	struct store_stmt *st;
	int r = 0, n = 0;

	pki_name_hash(X509_get_subject_name(issuer), h);
	skid_hex(issuer, sk, sizeof(sk));
	subj = pki_name_str(X509_get_subject_name(issuer));
	st = store_prepare(pki->db, "SELECT id, akid, signer, issuer, this_update, next_update "
		"FROM pki_crl WHERE issuer_hash = ?", err);
	if (st == NULL) {
		free(subj);
		return -1;
	}
	store_bind_text(st, 1, h);
	while (n < max && (r = store_stmt_step(st, err)) == 1) {
		const char *akid = store_col_text(st, 1);

		if (strcmp(store_col_text(st, 3), subj) != 0)
			continue;
		if (akid[0] != '\0' && sk[0] != '\0' && strcmp(akid, sk) != 0)
			continue;
		rows[n].id = store_col_int64(st, 0);
		sg_strlcpy(rows[n].akid, akid, sizeof(rows[n].akid));
		sg_strlcpy(rows[n].signer, store_col_is_null(st, 2) ? "" : store_col_text(st, 2),
			sizeof(rows[n].signer));
		sg_strlcpy(rows[n].issuer, store_col_text(st, 3), sizeof(rows[n].issuer));
		rows[n].this_update = store_col_int64(st, 4);
		rows[n].next_update = store_col_int64(st, 5);
		n++;
	}
	store_stmt_free(&st);
	free(subj);
	return n == max || r >= 0 ? n : -1;
}

/* changes_at - lower *changes_r to t when t is after at */
static void changes_at(int64_t *changes_r, int64_t at, int64_t t)
{
	if (t > at && t < *changes_r)
		*changes_r = t;
}

int pki_crl_check(struct pki *pki, X509 *c, X509 *issuer, int64_t at,
	char *reason, size_t reasonsz, char *warning, size_t warnsz, int64_t *changes_r,
	struct sg_error *err)
{
	struct crl_row rows[4];
	char *serial = NULL, when[32], esc[200];
	int n, i, r, rc = 2, why;
	int64_t revoked_at;
	bool current = false;

	n = crl_rows(pki, issuer, rows, 4, err);
	if (n < 0)
		return -1;
	serial = pki_serial_hex(X509_get0_serialNumber(c));
	if (serial == NULL) {
		sg_error_set(err, SG_E_PARSE, "certificate: bad serial");
		return -1;
	}
	for (i = 0; i < n; i++) {
		struct crl_row *row = &rows[i];

		sg_log_esc(esc, sizeof(esc), row->issuer, strlen(row->issuer));
		if (row->this_update > at) {
			changes_at(changes_r, at, row->this_update);
			continue;  /* issued after the time of interest */
		}
		r = crl_signed_by(pki, row->id, row->signer[0] ? row->signer : NULL, issuer, err);
		if (r < 0)
			goto out;
		if (r == 0) {
			snprintf(warning, warnsz, "CRL of %s has a bad signature (ignored)", esc);
			continue;
		}
		r = entry_lookup(pki, row->id, serial, &revoked_at, &why, err);
		if (r < 0)
			goto out;
		if (r == 1 && revoked_at > at)
			changes_at(changes_r, at, revoked_at);   /* revoked later */
		if (r == 1 && revoked_at <= at && why != 8) {
			sg_time_iso8601(revoked_at, when, sizeof(when));
			snprintf(reason, reasonsz, "revoked on %s by CRL of %s%s%s", when, esc,
				why != 0 ? ", reason " : "", why != 0 ? pki_crl_reason_name(why) : "");
			rc = 1;
			goto out;
		}
		if (row->next_update != 0 && row->next_update < at) {
			sg_time_iso8601(row->next_update, when, sizeof(when));
			snprintf(warning, warnsz, "CRL of %s expired on %s", esc, when);
		} else {
			current = true;
			if (row->next_update != 0)
				changes_at(changes_r, at, row->next_update + 1);
		}
	}
	if (current) {
		rc = 0;
	} else {
		char *s = pki_name_str(X509_get_subject_name(issuer));

		sg_log_esc(esc, sizeof(esc), s, strlen(s));
		free(s);
		snprintf(reason, reasonsz, "no current CRL of %s", esc);
		rc = 2;
	}
out:
	free(serial);
	return rc;
}

/* ------------------------------------------------------ distribution points */

int pki_cdp_record(struct pki *pki, X509 *x, struct sg_error *err)
{
	STACK_OF(DIST_POINT) *dps = X509_get_ext_d2i(x, NID_crl_distribution_points, NULL,
		NULL);
	struct store_stmt *st = NULL;
	int i, j, rc = -1;

	if (dps == NULL)
		return 0;
	for (i = 0; i < sk_DIST_POINT_num(dps); i++) {
		DIST_POINT *dp = sk_DIST_POINT_value(dps, i);

		if (dp->distpoint == NULL || dp->distpoint->type != 0)
			continue;
		for (j = 0; j < sk_GENERAL_NAME_num(dp->distpoint->name.fullname); j++) {
			GENERAL_NAME *g = sk_GENERAL_NAME_value(dp->distpoint->name.fullname, j);
			char url[PKI_CDP_URL_MAX + 1];
			int len;

			if (g->type != GEN_URI)
				continue;
			len = ASN1_STRING_length(g->d.uniformResourceIdentifier);
			if (len <= 0 || len > PKI_CDP_URL_MAX)
				continue;
			memcpy(url, ASN1_STRING_get0_data(g->d.uniformResourceIdentifier),
				(size_t)len);
			url[len] = '\0';
			if (strlen(url) != (size_t)len || (!sg_str_has_prefix_ci(url, "http://") &&
				!sg_str_has_prefix_ci(url, "https://") &&
				!sg_str_has_prefix_ci(url, "ldap://")))
				continue;
			if (st == NULL) {
				st = store_prepare(pki->db, "INSERT INTO pki_cdp (url) VALUES (?) "
					"ON CONFLICT DO NOTHING", err);
				if (st == NULL)
					goto out;
			}
			store_stmt_reset(st);
			store_bind_text(st, 1, url);
			if (store_stmt_step(st, err) < 0)
				goto out;
		}
	}
	rc = 0;
out:
	store_stmt_free(&st);
	CRL_DIST_POINTS_free(dps);
	return rc;
}

/* curl_sink - append a body chunk to the capped buffer */
static size_t curl_sink(char *p, size_t size, size_t n, void *arg)
{
	struct sg_buf *b = arg;

	if (sg_buf_append(b, p, size * n, NULL) < 0)
		return 0;  /* over PKI_CRL_MAX: abort the transfer */
	return size * n;
}

/* crl_fetch - GET url into b; 0 / -1 with a message */
static int crl_fetch(const char *url, const char *proxy, struct sg_buf *b,
	struct sg_error *err)
{
	CURL *h = curl_easy_init();
	char ebuf[CURL_ERROR_SIZE] = "";
	long code = 0;
	CURLcode cc;

	if (h == NULL) {
		sg_error_set(err, SG_E_NOMEM, "curl: cannot initialise");
		return -1;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https,ldap,ldaps");
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(h, CURLOPT_MAXREDIRS, 3L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 20L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 300L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, curl_sink);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "sealgate-crl/1");
	if (proxy != NULL && proxy[0] != '\0')
		curl_easy_setopt(h, CURLOPT_PROXY, proxy);
	else
		curl_easy_setopt(h, CURLOPT_PROXY, "");  /* ignore *_proxy env */
	cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(h);
	if (cc != CURLE_OK) {
		sg_error_set(err, SG_E_PEER_TEMP, "%s", ebuf[0] ? ebuf : curl_easy_strerror(cc));
		return -1;
	}
	if (sg_str_has_prefix_ci(url, "http") && (code < 200 || code > 299)) {
		sg_error_set(err, SG_E_PEER_TEMP, "HTTP status %ld", code);
		return -1;
	}
	return 0;
}

/* cdp_result - record success or failure (with exponential backoff) */
static int cdp_result(struct pki *pki, const char *url, int64_t failures, const char *msg,
	struct sg_error *err)
{
	struct store_stmt *st;
	int64_t now = sg_now(), delay;
	int rc;

	if (msg == NULL) {
		delay = PKI_CRL_INTERVAL;
		failures = 0;
	} else {
		failures++;
		delay = PKI_CRL_BACKOFF_MIN << (failures > 8 ? 8 : failures - 1);
		if (delay > PKI_CRL_INTERVAL)
			delay = PKI_CRL_INTERVAL;
	}
	/* last_success keeps its value on failure (CASE on the bound flag). */
	st = store_prepare(pki->db, "UPDATE pki_cdp SET failures = ?, next_try = ?, "
		"last_error = ?, last_success = CASE WHEN ? = 1 THEN ? ELSE last_success END "
		"WHERE url = ?", err);
	if (st == NULL)
		return -1;
	store_bind_int64(st, 1, failures);
	store_bind_int64(st, 2, now + delay);
	store_bind_text(st, 3, msg != NULL ? msg : "");
	store_bind_int64(st, 4, msg == NULL ? 1 : 0);
	store_bind_int64(st, 5, now);
	store_bind_text(st, 6, url);
	rc = store_stmt_step(st, err) < 0 ? -1 : 0;
	store_stmt_free(&st);
	return rc;
}

int pki_crl_update(struct pki *pki, const char *proxy, unsigned flags,
	pki_crl_update_cb *cb, void *arg, struct sg_error *err)
{
	struct store_stmt *st;
	char **urls = NULL;
	int64_t *fails = NULL;
	size_t n = 0, i;
	int r, failures = 0, rc = -1;

	st = store_prepare(pki->db, "SELECT url, failures FROM pki_cdp WHERE next_try <= ? "
		"ORDER BY url", err);
	if (st == NULL)
		return -1;
	store_bind_int64(st, 1, (flags & PKI_CRL_UPDATE_ALL) ? INT64_MAX : sg_now());
	while (n < PKI_CDP_UPDATE_MAX && (r = store_stmt_step(st, err)) == 1) {
		urls = sg_xrealloc(urls, (n + 1) * sizeof(*urls));
		fails = sg_xrealloc(fails, (n + 1) * sizeof(*fails));
		urls[n] = sg_xstrdup(store_col_text(st, 0));
		fails[n++] = store_col_int64(st, 1);
	}
	store_stmt_free(&st);
	if (n < PKI_CDP_UPDATE_MAX && r < 0)
		goto out;
	for (i = 0; i < n; i++) {
		struct sg_error e;
		struct sg_buf b;
		int ok;

		sg_buf_init(&b, PKI_CRL_MAX);
		ok = crl_fetch(urls[i], proxy, &b, &e) == 0 &&
			pki_crl_import(pki, b.data, b.len, urls[i], NULL, &e) >= 0;
		sg_buf_deinit(&b);
		if (!ok)
			failures++;
		if (cb != NULL)
			cb(urls[i], ok, ok ? "" : e.msg, arg);
		if (cdp_result(pki, urls[i], fails[i], ok ? NULL : e.msg, err) < 0)
			goto out;
	}
	rc = failures;
out:
	for (i = 0; i < n; i++)
		free(urls[i]);
	free(urls);
	free(fails);
	return rc;
}

/* ------------------------------------------------------------ proxy */

#define PKI_CRL_PROXY_KEY "pki.crl_proxy"

int pki_crl_proxy_get(struct pki *pki, char **proxy_r, struct sg_error *err)
{
	int r = store_setting_get(pki->db, PKI_CRL_PROXY_KEY, proxy_r, err);

	if (r <= 0) {
		*proxy_r = NULL;
		return r < 0 ? -1 : 0;
	}
	if ((*proxy_r)[0] == '\0') {
		free(*proxy_r);
		*proxy_r = NULL;
	}
	return 0;
}

int pki_crl_proxy_set(struct pki *pki, const char *proxy, struct sg_error *err)
{
	if (proxy == NULL || proxy[0] == '\0')
		return store_setting_delete(pki->db, PKI_CRL_PROXY_KEY, err);
	if ((strncasecmp(proxy, "http://", 7) != 0 && strncasecmp(proxy, "https://", 8) != 0) ||
	    strlen(proxy) > 1000 || strpbrk(proxy, " \t\r\n") != NULL) {
		sg_error_set(err, SG_E_INVAL, "CRL proxy: an http:// or https:// URL, got '%.100s'",
			proxy);
		return -1;
	}
	return store_setting_set(pki->db, PKI_CRL_PROXY_KEY, proxy, err);
}
