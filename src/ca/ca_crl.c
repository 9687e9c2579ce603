/*
 * ca_crl.c - CRLs of the built-in CAs (F-CA-7, guide §12.8, RFC 5280 §5).
 *
 * Called by the CLI in the caller's thread. The revoked serials of each CA
 * are kept in table ca_revoked (first revocation time wins), so "update" adds
 * to every earlier revocation and CA_CRL_NEW starts over. Each CRL is a v2 CRL
 * of the CA's intermediate with the next CRL number and the AKI, signed inside
 * pki_key (ca_crl_sign_stored) and imported into the PKI CRL store in the same
 * transaction, so validation sees it at once.
 */
#include "ca/ca_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

static const char *const reasons[] = {
	"unspecified", "keyCompromise", "cACompromise", "affiliationChanged", "superseded",
	"cessationOfOperation", "certificateHold", NULL, NULL, "privilegeWithdrawn",
	"aACompromise",
};

int ca_crl_reason_parse(const char *s)
{
	size_t i;

	for (i = 0; s != NULL && i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i] != NULL && strcasecmp(s, reasons[i]) == 0)
			return (int)i;
	return -1;
}

/* serial_norm - "0x00:1A:2b" -> "1a2b"; -1 when not hex or too long */
static int serial_norm(const char *in, char *out, size_t outsz)
{
	const char *p = in;
	size_t n = 0;

	if (sg_str_has_prefix_ci(p, "0x"))
		p += 2;
	for (; *p != '\0'; p++) {
		if (*p == ':')
			continue;
		if (!isxdigit((unsigned char)*p))
			return -1;
		if (n == 0 && *p == '0')
			continue;
		if (n + 1 >= outsz)
			return -1;
		out[n++] = (char)tolower((unsigned char)*p);
	}
	if (n == 0) {
		/* all zeros or empty: only a literal zero is a serial */
		if (strchr(in, '0') == NULL)
			return -1;
		out[n++] = '0';
	}
	out[n] = '\0';
	return 0;
}

static int revoked_add(struct ca *ca, const char *lc, const struct ca_crl_opts *o,
	struct sg_error *err)
{
	struct store_stmt *st;
	char s[CA_SERIAL_HEX_MAX + 1], esc[80];
	int64_t now = sg_now();
	size_t i;

	if (o->flags & CA_CRL_NEW) {
		st = store_prepare(ca->db, "DELETE FROM ca_revoked WHERE ca_name_lc = ?", err);
		if (st == NULL)
			return -1;
		store_bind_text(st, 1, lc);
		if (store_stmt_step(st, err) < 0) {
			store_stmt_free(&st);
			return -1;
		}
		store_stmt_free(&st);
	}
	if (o->reason >= (int)(sizeof(reasons) / sizeof(reasons[0])) ||
		(o->reason >= 0 && reasons[o->reason] == NULL)) {
		sg_error_set(err, SG_E_INVAL, "bad revocation reason %d", o->reason);
		return -1;
	}
	st = store_prepare(ca->db, "INSERT INTO ca_revoked (ca_name_lc, serial, revoked_at, "
		"reason) VALUES (?, ?, ?, ?) ON CONFLICT (ca_name_lc, serial) DO UPDATE SET "
		"reason = CASE WHEN excluded.reason >= 0 THEN excluded.reason ELSE "
		"ca_revoked.reason END", err);
	if (st == NULL)
		return -1;
	for (i = 0; i < o->n_serials; i++) {
		if (serial_norm(o->serials[i], s, sizeof(s)) < 0) {
			sg_error_set(err, SG_E_INVAL, "bad serial number '%s' (hex expected)",
				sg_log_esc(esc, sizeof(esc), o->serials[i], strlen(o->serials[i])));
			store_stmt_free(&st);
			return -1;
		}
		store_stmt_reset(st);
		store_bind_text(st, 1, lc);
		store_bind_text(st, 2, s);
		store_bind_int64(st, 3, now);
		store_bind_int64(st, 4, o->reason < 0 ? -1 : o->reason);
		if (store_stmt_step(st, err) < 0) {
			store_stmt_free(&st);
			return -1;
		}
	}
	store_stmt_free(&st);
	return 0;
}

/* revoked_reason - the reasonCode entry extension when reason >= 0; *why is
 * a scratch value reused across entries */
static int revoked_reason(X509_REVOKED *rev, int64_t reason, ASN1_ENUMERATED **why)
{
	if (reason < 0)
		return 0;
	if (*why == NULL)
		*why = ASN1_ENUMERATED_new();
	if (*why == NULL || ASN1_ENUMERATED_set(*why, (long)reason) != 1 ||
		X509_REVOKED_add1_ext_i2d(rev, NID_crl_reason, *why, 0, 0) != 1)
		return -1;
	return 0;
}

/* revoked_fill - every revoked serial of the CA into crl */
static int revoked_fill(struct ca *ca, const char *lc, X509_CRL *crl, struct sg_error *err)
{
	struct store_stmt *st = store_prepare(ca->db, "SELECT serial, revoked_at, reason "
		"FROM ca_revoked WHERE ca_name_lc = ? ORDER BY serial", err);
	ASN1_ENUMERATED *why = NULL;
	X509_REVOKED *rev = NULL;
	ASN1_TIME *t = NULL;
	ASN1_INTEGER *ai = NULL;
	BIGNUM *bn = NULL;
	int r = -1;

	if (st == NULL)
		return -1;
	store_bind_text(st, 1, lc);
	while ((r = store_stmt_step(st, err)) > 0) {
		const char *hex = store_col_text(st, 0);

		rev = X509_REVOKED_new();
		t = ASN1_TIME_set(NULL, (time_t)store_col_int64(st, 1));
		if (hex != NULL && BN_hex2bn(&bn, hex) != 0)
			ai = BN_to_ASN1_INTEGER(bn, NULL);
		if (rev == NULL || t == NULL || ai == NULL ||
			X509_REVOKED_set_serialNumber(rev, ai) != 1 ||
			X509_REVOKED_set_revocationDate(rev, t) != 1 ||
			revoked_reason(rev, store_col_int64(st, 2), &why) < 0 ||
			X509_CRL_add0_revoked(crl, rev) != 1) {
			sg_error_set_openssl(err, SG_E_CRYPTO, "CRL entry %s", hex != NULL ? hex : "");
			r = -1;
			break;
		}
		rev = NULL;
		ASN1_INTEGER_free(ai);
		ai = NULL;
		ASN1_TIME_free(t);
		t = NULL;
	}
	X509_REVOKED_free(rev);
	ASN1_INTEGER_free(ai);
	ASN1_TIME_free(t);
	ASN1_ENUMERATED_free(why);
	BN_free(bn);
	store_stmt_free(&st);
	return r < 0 ? -1 : 0;
}

static X509_CRL *crl_build(struct ca *ca, const char *lc, X509 *issuer, int64_t number,
	unsigned days, struct sg_error *err)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *last = NULL, *next = NULL;
	ASN1_INTEGER *num = NULL;
	X509_EXTENSION *ext = NULL;
	X509V3_CTX ctx;

	if (crl == NULL || X509_CRL_set_version(crl, X509_CRL_VERSION_2) != 1 ||
		X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)) != 1)
		goto ossl;
	last = ASN1_TIME_set(NULL, (time_t)sg_now());
	next = ASN1_TIME_adj(NULL, (time_t)sg_now(), (int)days, 0);
	if (last == NULL || next == NULL || X509_CRL_set1_lastUpdate(crl, last) != 1 ||
		X509_CRL_set1_nextUpdate(crl, next) != 1)
		goto ossl;
	if (revoked_fill(ca, lc, crl, err) < 0)
		goto fail;
	X509V3_set_ctx(&ctx, issuer, NULL, NULL, crl, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always");
	num = ASN1_INTEGER_new();
	if (ext == NULL || X509_CRL_add_ext(crl, ext, -1) != 1 || num == NULL ||
		ASN1_INTEGER_set_int64(num, number) != 1 ||
		X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0) != 1 ||
		X509_CRL_sort(crl) != 1)
		goto ossl;
	ASN1_TIME_free(last);
	ASN1_TIME_free(next);
	ASN1_INTEGER_free(num);
	X509_EXTENSION_free(ext);
	return crl;
ossl:
	sg_error_set_openssl(err, SG_E_CRYPTO, "build CRL");
fail:
	ASN1_TIME_free(last);
	ASN1_TIME_free(next);
	ASN1_INTEGER_free(num);
	X509_EXTENSION_free(ext);
	X509_CRL_free(crl);
	return NULL;
}

static int crl_number_next(struct ca *ca, const char *lc, int64_t *n_r,
	struct sg_error *err)
{
	struct store_stmt *st = store_prepare(ca->db,
		"UPDATE ca SET crl_number = crl_number + 1 WHERE name_lc = ?", err);
	int r;

	if (st == NULL)
		return -1;
	store_bind_text(st, 1, lc);
	r = store_stmt_step(st, err);
	store_stmt_free(&st);
	if (r < 0)
		return -1;
	st = store_prepare(ca->db, "SELECT crl_number FROM ca WHERE name_lc = ?", err);
	if (st == NULL)
		return -1;
	store_bind_text(st, 1, lc);
	r = store_stmt_step(st, err);
	if (r > 0)
		*n_r = store_col_int64(st, 0);
	store_stmt_free(&st);
	if (r == 0)
		sg_error_set(err, SG_E_NOTFOUND, "CA vanished");
	return r > 0 ? 0 : -1;
}

int ca_crl(struct ca *ca, const struct ca_crl_opts *o, struct sg_buf *der_out,
	struct pki_crl_info *info_r, struct sg_error *err)
{
	struct ca_info info;
	struct pki_cert *inter = NULL;
	X509_CRL *tbs = NULL, *crl = NULL;
	unsigned char *der = NULL;
	char lc[CA_NAME_MAX + 1], src[CA_NAME_MAX + 8];
	int64_t number = 0;
	unsigned days = o->next_update_days ? o->next_update_days : 7;
	int len = 0, f, rc = -1;

	if (days > CA_DAYS_MAX) {
		sg_error_set(err, SG_E_INVAL, "next update must be at most %u days", CA_DAYS_MAX);
		return -1;
	}
	f = ca_get(ca, o->ca_name, &info, err);
	if (f <= 0) {
		if (f == 0)
			sg_error_set(err, SG_E_NOTFOUND, "no CA named '%s'",
				o->ca_name != NULL ? o->ca_name : "(default)");
		return -1;
	}
	f = pki_cert_get(ca->pki, info.inter_thumbprint, &inter, err);
	if (f <= 0) {
		if (f == 0)
			sg_error_set(err, SG_E_NOTFOUND, "CA %s: intermediate missing", info.name);
		return -1;
	}
	ca_name_lower(info.name, lc, sizeof(lc));
	snprintf(src, sizeof(src), "ca:%s", info.name);
	if (pki_batch_begin(ca->pki, err) < 0)
		goto out;
	rc = revoked_add(ca, lc, o, err);
	if (rc == 0)
		rc = crl_number_next(ca, lc, &number, err);
	if (rc == 0) {
		tbs = crl_build(ca, lc, inter->x509, number, days, err);
		rc = tbs != NULL ? 0 : -1;
	}
	if (rc == 0)
		rc = ca_crl_sign_stored(ca, tbs, info.inter_thumbprint, inter->x509,
			o->md >= 0 ? (enum ca_digest)o->md : info.md, &crl, err);
	if (rc == 0) {
		len = i2d_X509_CRL(crl, &der);
		if (len <= 0) {
			sg_error_set_openssl(err, SG_E_CRYPTO, "encode CRL");
			rc = -1;
		}
	}
	if (rc == 0) {
		f = pki_crl_import(ca->pki, der, (size_t)len, src, info_r, err);
		if (f == PKI_CRL_OLDER)
			sg_error_set(err, SG_E_INTERNAL, "the CRL store kept a newer CRL of CA %s",
				info.name);
		if (f != PKI_CRL_ADDED)
			rc = -1;
	}
	rc = pki_batch_end(ca->pki, rc, err);
	if (rc == 0 && der_out != NULL)
		rc = sg_buf_append(der_out, der, (size_t)len, err);
	if (rc == 0)
		sg_log(SG_LOG_INFO, "ca: CRL %lld of CA %s with %d entries", (long long)number,
			info.name, X509_CRL_get_REVOKED(crl) != NULL ?
			sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)) : 0);
out:
	OPENSSL_free(der);
	X509_CRL_free(tbs);
	X509_CRL_free(crl);
	pki_cert_free(&inter);
	return rc;
}
