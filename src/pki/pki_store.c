/*
 * pki_store.c - the certificate and roots stores: parsing one certificate into
 * struct pki_cert, storing it with its lower-cased e-mail index rows, lookup by
 * thumbprint/e-mail, paged search, delete (refused while selected).
 *
 * Called by the CLI, the HTTP API and the MPA (certificates taken from signed
 * mail), in any thread, each with its own struct pki over its own store
 * connection. Implements the certificate store of RFC 5280 profile data
 * (SPEC F-PKI-1, F-PKI-2, F-PKI-7).
 *
 * Invariants: thumbprint = SHA-512(DER) lower-case hex is the primary key;
 * every address in pki_cert_email is lower-case; is_root rows are the trust
 * anchors; adding or removing any certificate and setting has_key bump the
 * generation so cached verdicts, selections and chains are recomputed.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "pki/pki_int.h"

#define PKI_EMAIL_MAX 320
#define PKI_EMAILS_PER_CERT_MAX 64

struct pki *pki_open(struct store *db, struct sg_error *err)
{
	struct pki *pki;

	if (db == NULL) {
		sg_error_set(err, SG_E_INVAL, "pki: no store");
		return NULL;
	}
	pki = sg_xcalloc(1, sizeof(*pki));
	pki->db = db;
	pki->cache = sg_xcalloc(PKI_CACHE_SLOTS, sizeof(*pki->cache));
	return pki;
}

void pki_close(struct pki **pp)
{
	struct pki *pki;

	if (pp == NULL || *pp == NULL)
		return;
	pki = *pp;
	*pp = NULL;
	pki_memo_free(pki);
	free(pki->cache);
	free(pki);
}

struct store *pki_store(struct pki *pki)
{
	return pki->db;
}

/* ---------------------------------------------------------------- helpers */

void pki_thumbprint(const void *der, size_t len, char *out)
{
	unsigned char md[64];
	unsigned int mdlen = 0;

	EVP_Digest(der, len, md, &mdlen, EVP_sha512(), NULL);
	sg_hex(out, md, 64);
}

int pki_thumbprint_normalize(char *t, struct sg_error *err)
{
	size_t i;

	for (i = 0; t[i] != '\0'; i++) {
		if (!isxdigit((unsigned char)t[i]) || i >= PKI_THUMBPRINT_LEN)
			break;
		t[i] = (char)tolower((unsigned char)t[i]);
	}
	if (i != PKI_THUMBPRINT_LEN || t[i] != '\0') {
		sg_error_set(err, SG_E_INVAL,
			"bad thumbprint (want %d hex digits of SHA-512)", PKI_THUMBPRINT_LEN);
		return -1;
	}
	return 0;
}

int64_t pki_asn1_time(const ASN1_TIME *t)
{
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return -1;
	return (int64_t)timegm(&tm);
}

char *pki_serial_hex(const ASN1_INTEGER *i)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(i, NULL);
	char *hex, *out;

	if (bn == NULL)
		return NULL;
	hex = BN_bn2hex(bn);
	BN_free(bn);
	if (hex == NULL)
		return NULL;
	out = sg_xstrdup(hex[0] == '-' ? hex : hex);
	OPENSSL_free(hex);
	sg_str_lower(out);
	/* BN_bn2hex pads to whole bytes: "0A" -> strip leading zeros, keep "0". */
	{
		char *p = out[0] == '-' ? out + 1 : out;
		size_t z = 0;

		while (p[z] == '0' && p[z + 1] != '\0')
			z++;
		memmove(p, p + z, strlen(p + z) + 1);
	}
	return out;
}

char *pki_name_str(const X509_NAME *n)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data = NULL, *out;
	long len;

	if (b == NULL)
		return sg_xstrdup("");
	X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
	len = BIO_get_mem_data(b, &data);
	out = sg_xstrndup(data != NULL ? data : "", len > 0 ? (size_t)len : 0);
	BIO_free(b);
	return out;
}

void pki_name_hash(const X509_NAME *n, char *out)
{
	int ok = 0;
	unsigned long h = X509_NAME_hash_ex(n, NULL, NULL, &ok);

	snprintf(out, 9, "%08lx", ok ? h & 0xffffffffUL : 0UL);
}

/* ----------------------------------------------------------- transactions */

int pki_batch_begin(struct pki *pki, struct sg_error *err)
{
	if (pki->in_tx) {
		sg_error_set(err, SG_E_INTERNAL, "pki: batch already open");
		return -1;
	}
	if (store_begin(pki->db, err) < 0)
		return -1;
	pki->in_tx = true;
	return 0;
}

/* pin_reset - after a rollback or a failed commit, a pinned generation may
 * be one our own bump wrote and the store no longer has: read it again (or,
 * on error, pin a value no cache entry carries) */
static void pin_reset(struct pki *pki)
{
	unsigned depth = pki->pin_depth;
	int64_t gen;

	if (depth == 0)
		return;
	pki->pin_depth = 0;
	pki->pin_gen = pki_generation(pki, &gen, NULL) == 0 ? gen : INT64_MIN;
	pki->pin_depth = depth;
}

int pki_batch_end(struct pki *pki, int rc, struct sg_error *err)
{
	if (!pki->in_tx)
		return rc;
	pki->in_tx = false;
	if (rc < 0) {
		store_rollback(pki->db, NULL);
		pin_reset(pki);
		return rc;
	}
	if (store_commit(pki->db, err) < 0) {
		pin_reset(pki);
		return -1;
	}
	return 0;
}

int pki_tx_begin(struct pki *pki, bool *own_r, struct sg_error *err)
{
	*own_r = false;
	if (pki->in_tx)
		return 0;  /* nested: the outermost owner commits or rolls back */
	if (store_begin(pki->db, err) < 0)
		return -1;
	pki->in_tx = true;
	*own_r = true;
	return 0;
}

int pki_tx_end(struct pki *pki, bool own, int rc, struct sg_error *err)
{
	if (!own)
		return rc;
	pki->in_tx = false;
	if (rc < 0) {
		store_rollback(pki->db, NULL);
		pin_reset(pki);
		return rc;
	}
	if (store_commit(pki->db, err) < 0) {
		pin_reset(pki);
		return -1;
	}
	return rc;
}

/* pki_generation - read the verdict generation; absent = 0 */
int pki_generation(struct pki *pki, int64_t *gen_r, struct sg_error *err)
{
	char *v = NULL;
	int rc;

	if (pki->pin_depth > 0) {
		*gen_r = pki->pin_gen;
		return 0;
	}
	rc = store_setting_get(pki->db, "pki.generation", &v, err);
	*gen_r = 0;
	if (rc < 0)
		return -1;
	if (rc == 1 && sg_parse_i64(v, INT64_MIN, INT64_MAX, gen_r) < 0)
		*gen_r = -1;
	free(v);
	return 0;
}

/* pki_generation_bump - a fresh random value (no read-modify-write race) */
int pki_generation_bump(struct pki *pki, struct sg_error *err)
{
	uint64_t r;
	char buf[32];

	if (sg_random_bytes(&r, sizeof(r), err) < 0)
		return -1;
	snprintf(buf, sizeof(buf), "%lld", (long long)(r >> 2));
	if (store_setting_set(pki->db, "pki.generation", buf, err) < 0)
		return -1;
	/* our own change is seen at once, pinned or not */
	pki->pin_gen = (int64_t)(r >> 2);
	return 0;
}

int pki_pin_begin(struct pki *pki, struct sg_error *err)
{
	int64_t gen;

	if (pki->pin_depth == 0) {
		if (pki_generation(pki, &gen, err) < 0)
			return -1;
		pki->pin_gen = gen;
	}
	pki->pin_depth++;
	return 0;
}

void pki_pin_end(struct pki *pki)
{
	if (pki != NULL && pki->pin_depth > 0)
		pki->pin_depth--;
}

/* ------------------------------------------------------------ certificates */

/* email_add - normalise one address and append it unless present/invalid */
static void email_add(struct pki_cert *c, const unsigned char *s, int len)
{
	char buf[PKI_EMAIL_MAX + 1];
	size_t i;
	bool has_at = false;

	if (len <= 0 || len > PKI_EMAIL_MAX || c->n_emails >= PKI_EMAILS_PER_CERT_MAX)
		return;
	for (i = 0; i < (size_t)len; i++) {
		if (s[i] <= 0x20 || s[i] >= 0x7f)
			return;  /* XXX: EAI (UTF-8) addresses are not indexed */
		buf[i] = (char)tolower(s[i]);
		if (s[i] == '@')
			has_at = true;
	}
	buf[len] = '\0';
	if (!has_at)
		return;
	for (i = 0; i < c->n_emails; i++) {
		if (strcmp(c->emails[i], buf) == 0)
			return;
	}
	c->emails = sg_xrealloc(c->emails, (c->n_emails + 1) * sizeof(char *));
	c->emails[c->n_emails++] = sg_xstrdup(buf);
}

/* cert_emails - subject emailAddress attributes + SAN rfc822Name */
static void cert_emails(struct pki_cert *c)
{
	const X509_NAME *n = X509_get_subject_name(c->x509);
	GENERAL_NAMES *gens;
	int pos = -1, i;

	while ((pos = X509_NAME_get_index_by_NID(n, NID_pkcs9_emailAddress, pos)) >= 0) {
		const ASN1_STRING *d = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, pos));
		unsigned char *u = NULL;
		int len = ASN1_STRING_to_UTF8(&u, d);

		if (len > 0)
			email_add(c, u, len);
		OPENSSL_free(u);
	}
	gens = X509_get_ext_d2i(c->x509, NID_subject_alt_name, NULL, NULL);
	for (i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);

		if (g->type == GEN_EMAIL)
			email_add(c, ASN1_STRING_get0_data(g->d.rfc822Name),
				ASN1_STRING_length(g->d.rfc822Name));
	}
	GENERAL_NAMES_free(gens);
}

struct pki_cert *pki_cert_from_x509(X509 *x, struct sg_error *err)
{
	struct pki_cert *c = NULL;
	unsigned char *der = NULL;
	int len;

	len = i2d_X509(x, &der);
	if (len <= 0) {
		sg_error_set_openssl(err, SG_E_PARSE, "certificate: cannot encode");
		return NULL;
	}
	c = sg_xcalloc(1, sizeof(*c));
	X509_up_ref(x);
	c->x509 = x;
	pki_thumbprint(der, (size_t)len, c->thumbprint);
	OPENSSL_free(der);
	c->subject = pki_name_str(X509_get_subject_name(x));
	c->issuer = pki_name_str(X509_get_issuer_name(x));
	c->serial = pki_serial_hex(X509_get0_serialNumber(x));
	c->not_before = pki_asn1_time(X509_get0_notBefore(x));
	c->not_after = pki_asn1_time(X509_get0_notAfter(x));
	if (c->serial == NULL || c->not_before < 0 || c->not_after < 0) {
		sg_error_set(err, SG_E_PARSE, "certificate: bad serial or validity dates");
		pki_cert_free(&c);
		return NULL;
	}
	/* X509_get_extension_flags caches the extensions and flags bad ones. */
	c->is_ca = (X509_get_extension_flags(x) & EXFLAG_CA) != 0;
	if ((X509_get_extension_flags(x) & EXFLAG_INVALID) != 0) {
		sg_error_set(err, SG_E_PARSE, "certificate: invalid extensions");
		pki_cert_free(&c);
		return NULL;
	}
	cert_emails(c);
	return c;
}

static int cert_up_ref(void *x)
{
	return X509_up_ref(x);
}

static void cert_free(void *x)
{
	X509_free(x);
}

/* Decoded certificates by their DER (pki_objcache.c). */
static struct pki_objcache cert_cache = {PTHREAD_MUTEX_INITIALIZER, cert_up_ref,
	cert_free, {{NULL, 0, NULL}}};

X509 *pki_x509_from_der(const void *der, size_t len)
{
	const unsigned char *p = der;
	X509 *x = pki_objcache_get(&cert_cache, der, len);

	if (x != NULL || len == 0 || len > PKI_IMPORT_MAX)
		return x;
	x = d2i_X509(NULL, &p, (long)len);
	if (x != NULL && p != (const unsigned char *)der + len) {
		X509_free(x);
		return NULL;
	}
	if (x != NULL)
		pki_objcache_put(&cert_cache, der, len, x);
	return x;
}

struct pki_cert *pki_cert_from_der(const void *der, size_t len, struct sg_error *err)
{
	const unsigned char *p = der;
	struct pki_cert *c;
	X509 *x;

	if (len == 0 || len > PKI_IMPORT_MAX) {
		sg_error_set(err, SG_E_PARSE, "certificate: bad DER length %zu", len);
		return NULL;
	}
	x = pki_objcache_get(&cert_cache, der, len);
	if (x != NULL) {
		c = pki_cert_from_x509(x, err);
		X509_free(x);
		return c;
	}
	x = d2i_X509(NULL, &p, (long)len);
	if (x == NULL) {
		sg_error_set_openssl(err, SG_E_PARSE, "certificate: bad DER");
		return NULL;
	}
	if (p != (const unsigned char *)der + len) {
		X509_free(x);
		sg_error_set(err, SG_E_PARSE, "certificate: %zu trailing bytes after DER",
			len - (size_t)(p - (const unsigned char *)der));
		return NULL;
	}
	c = pki_cert_from_x509(x, err);
	if (c != NULL)
		pki_objcache_put(&cert_cache, der, len, x);
	X509_free(x);
	return c;
}

void pki_cert_free(struct pki_cert **cp)
{
	struct pki_cert *c;
	size_t i;

	if (cp == NULL || *cp == NULL)
		return;
	c = *cp;
	*cp = NULL;
	X509_free(c->x509);
	free(c->subject);
	free(c->issuer);
	free(c->serial);
	for (i = 0; i < c->n_emails; i++)
		free(c->emails[i]);
	free(c->emails);
	free(c);
}

void pki_cert_list_free(struct pki_cert_list *l)
{
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < l->n; i++)
		pki_cert_free(&l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

struct pki_cert *pki_cert_from_row(struct store_stmt *st, struct sg_error *err)
{
	size_t len = 0;
	const void *der = store_col_blob(st, 1, &len);
	struct pki_cert *c = pki_cert_from_der(der, len, err);

	if (c == NULL) {
		sg_error_prefix(err, "stored certificate %.16s: ", store_col_text(st, 0));
		return NULL;
	}
	c->is_root = store_col_int64(st, 2) != 0;
	c->has_key = store_col_int64(st, 3) != 0;
	return c;
}

/* step_done - run a statement that returns no rows; 0 / -1 */
static int step_done(struct store_stmt *st, struct sg_error *err)
{
	return store_stmt_step(st, err) < 0 ? -1 : 0;
}

/* cert_exists - 1 stored (is_root in *root_r), 0 no, -1 error */
static int cert_exists(struct pki *pki, const char *thumb, bool *root_r,
	struct sg_error *err)
{
	struct store_stmt *st;
	int rc;

	st = store_prepare(pki->db, "SELECT is_root FROM pki_cert WHERE thumbprint = ?", err);
	if (st == NULL)
		return -1;
	store_bind_text(st, 1, thumb);
	rc = store_stmt_step(st, err);
	if (rc == 1)
		*root_r = store_col_int64(st, 0) != 0;
	store_stmt_free(&st);
	return rc;
}

/* cert_insert - the pki_cert row and its e-mail rows */
static int cert_insert(struct pki *pki, const struct pki_cert *c, bool root,
	struct sg_error *err)
{
	struct store_stmt *st = NULL;
	unsigned char *der = NULL;
	char sh[9], ih[9];
	int len, rc = -1;
	size_t i;

	len = i2d_X509(c->x509, &der);
	if (len <= 0) {
		sg_error_set_openssl(err, SG_E_PARSE, "certificate: cannot encode");
		goto out;
	}
	pki_name_hash(X509_get_subject_name(c->x509), sh);
	pki_name_hash(X509_get_issuer_name(c->x509), ih);
	st = store_prepare(pki->db, "INSERT INTO pki_cert (thumbprint, der, subject, issuer, "
		"serial, subject_hash, issuer_hash, not_before, not_after, is_root, is_ca, "
		"has_key, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)", err);
	if (st == NULL)
		goto out;
	store_bind_text(st, 1, c->thumbprint);
	store_bind_blob(st, 2, der, (size_t)len);
	store_bind_text(st, 3, c->subject);
	store_bind_text(st, 4, c->issuer);
	store_bind_text(st, 5, c->serial);
	store_bind_text(st, 6, sh);
	store_bind_text(st, 7, ih);
	store_bind_int64(st, 8, c->not_before);
	store_bind_int64(st, 9, c->not_after);
	store_bind_int64(st, 10, root ? 1 : 0);
	store_bind_int64(st, 11, c->is_ca ? 1 : 0);
	store_bind_int64(st, 12, sg_now());
	if (step_done(st, err) < 0)
		goto out;
	store_stmt_free(&st);
	if (c->n_emails > 0) {
		st = store_prepare(pki->db, "INSERT INTO pki_cert_email (email, thumbprint) "
			"VALUES (?, ?)", err);
		if (st == NULL)
			goto out;
		for (i = 0; i < c->n_emails; i++) {
			store_stmt_reset(st);
			store_bind_text(st, 1, c->emails[i]);
			store_bind_text(st, 2, c->thumbprint);
			if (step_done(st, err) < 0)
				goto out;
		}
	}
	rc = 0;
out:
	store_stmt_free(&st);
	OPENSSL_free(der);
	return rc;
}

int pki_cert_add(struct pki *pki, const struct pki_cert *c, unsigned flags,
	struct sg_error *err)
{
	bool own = false, was_root = false, root = (flags & PKI_ADD_ROOT) != 0;
	/* any new certificate: a root or CA changes verdicts, any other one
	 * the automatic selections by address (pki_memo.c) */
	bool bump = true;
	struct store_stmt *st = NULL;
	int rc = -1, found;

	if (pki_tx_begin(pki, &own, err) < 0)
		return -1;
	found = cert_exists(pki, c->thumbprint, &was_root, err);
	if (found < 0)
		goto out;
	if (found == 1 && (!root || was_root)) {
		rc = 0;
		bump = false;
		goto out;
	}
	if (found == 1) {
		st = store_prepare(pki->db, "UPDATE pki_cert SET is_root = 1 WHERE "
			"thumbprint = ?", err);
		if (st == NULL)
			goto out;
		store_bind_text(st, 1, c->thumbprint);
		if (step_done(st, err) < 0)
			goto out;
	} else if (cert_insert(pki, c, root, err) < 0) {
		goto out;
	}
	if (!root && pki_cdp_record(pki, c->x509, err) < 0)
		goto out;
	if (bump && pki_generation_bump(pki, err) < 0)
		goto out;
	rc = 1;
out:
	store_stmt_free(&st);
	if (rc < 0)
		sg_error_prefix(err, "certificate %.16s: ", c->thumbprint);
	return pki_tx_end(pki, own, rc, err);
}

int pki_x509_collect(struct pki *pki, X509 *x, struct sg_error *err)
{
	char t[PKI_THUMBPRINT_LEN + 1];
	struct pki_cert *c;
	bool root = false;
	int rc;

	/* most certificates carried in mail are known already: one indexed
	 * lookup, no text fields, no transaction */
	pki_x509_thumbprint(x, t);
	if (t[0] == '\0') {
		sg_error_set(err, SG_E_CRYPTO, "pki: certificate digest");
		return -1;
	}
	rc = cert_exists(pki, t, &root, err);
	if (rc != 0)
		return rc < 0 ? -1 : 0;
	c = pki_cert_from_x509(x, err);
	if (c == NULL)
		return -1;
	rc = pki_cert_add(pki, c, 0, err);
	pki_cert_free(&c);
	return rc;
}

int pki_cert_get(struct pki *pki, const char *thumbprint, struct pki_cert **c_r,
	struct sg_error *err)
{
	char t[PKI_THUMBPRINT_LEN + 1];
	struct store_stmt *st;
	int rc;

	*c_r = NULL;
	sg_strlcpy(t, thumbprint, sizeof(t));
	if (strlen(thumbprint) != PKI_THUMBPRINT_LEN || pki_thumbprint_normalize(t, NULL) < 0)
		return 0;  /* cannot be stored: not found */
	st = store_prepare(pki->db, "SELECT " PKI_CERT_COLS " FROM pki_cert WHERE "
		"thumbprint = ?", err);
	if (st == NULL)
		return -1;
	store_bind_text(st, 1, t);
	rc = store_stmt_step(st, err);
	if (rc == 1) {
		*c_r = pki_cert_from_row(st, err);
		if (*c_r == NULL)
			rc = -1;
	}
	store_stmt_free(&st);
	return rc;
}

int pki_cert_set_has_key(struct pki *pki, const char *thumbprint, bool has,
	struct sg_error *err)
{
	struct store_stmt *st;
	int rc;

	st = store_prepare(pki->db, "UPDATE pki_cert SET has_key = ? WHERE thumbprint = ?",
		err);
	if (st == NULL)
		return -1;
	store_bind_int64(st, 1, has ? 1 : 0);
	store_bind_text(st, 2, thumbprint);
	rc = step_done(st, err);
	store_stmt_free(&st);
	/* a signing selection depends on has_key (pki_memo.c) */
	if (rc == 0)
		rc = pki_generation_bump(pki, err);
	return rc;
}

/* first_usage - 1 + owner copied when thumb is selected somewhere, 0, -1 */
static int first_usage(struct pki *pki, const char *thumb, char *owner, size_t ownersz,
	int64_t *count_r, struct sg_error *err)
{
	struct store_stmt *st;
	int rc;

	st = store_prepare(pki->db, "SELECT owner_kind, owner_name, kind FROM pki_selection "
		"WHERE thumbprint = ? ORDER BY owner_kind, owner_name", err);
	if (st == NULL)
		return -1;
	store_bind_text(st, 1, thumb);
	*count_r = 0;
	while ((rc = store_stmt_step(st, err)) == 1) {
		if (*count_r == 0)
			snprintf(owner, ownersz, "%s%s%s (%s)", store_col_text(st, 0),
				store_col_text(st, 1)[0] ? " " : "", store_col_text(st, 1),
				store_col_text(st, 2));
		(*count_r)++;
	}
	store_stmt_free(&st);
	if (rc < 0)
		return -1;
	return *count_r > 0 ? 1 : 0;
}

int pki_cert_delete(struct pki *pki, const char *thumbprint, struct sg_error *err)
{
	static const char *const sqls[] = {
		"DELETE FROM pki_key WHERE thumbprint = ?",
		"DELETE FROM pki_cert_email WHERE thumbprint = ?",
		"DELETE FROM pki_cert WHERE thumbprint = ?",
	};
	char t[PKI_THUMBPRINT_LEN + 1], owner[320];
	struct store_stmt *st = NULL;
	bool own = false, root = false;
	int64_t n = 0;
	int rc = -1, found;
	size_t i;

	sg_strlcpy(t, thumbprint, sizeof(t));
	if (strlen(thumbprint) != PKI_THUMBPRINT_LEN || pki_thumbprint_normalize(t, err) < 0)
		return -1;
	if (pki_tx_begin(pki, &own, err) < 0)
		return -1;
	found = cert_exists(pki, t, &root, err);
	if (found <= 0) {
		if (found == 0)
			sg_error_set(err, SG_E_NOTFOUND, "certificate %.16s... not found", t);
		goto out;
	}
	found = first_usage(pki, t, owner, sizeof(owner), &n, err);
	if (found < 0)
		goto out;
	if (found == 1) {
		sg_error_set(err, SG_E_POLICY, "certificate %.16s... is in use by %s%s", t, owner,
			n > 1 ? " and others" : "");
		goto out;
	}
	for (i = 0; i < sizeof(sqls) / sizeof(sqls[0]); i++) {
		st = store_prepare(pki->db, sqls[i], err);
		if (st == NULL)
			goto out;
		store_bind_text(st, 1, t);
		if (step_done(st, err) < 0)
			goto out;
		store_stmt_free(&st);
	}
	/* Removing any certificate may break a path: recompute verdicts. */
	if (pki_generation_bump(pki, err) < 0)
		goto out;
	rc = 0;
out:
	store_stmt_free(&st);
	return pki_tx_end(pki, own, rc, err);
}

/* like_pattern - "%s%" with LIKE metacharacters escaped by '\' */
static char *like_pattern(const char *s)
{
	size_t n = strlen(s), i, j = 0;
	char *p = sg_xmalloc(2 * n + 3);

	p[j++] = '%';
	for (i = 0; i < n; i++) {
		if (s[i] == '%' || s[i] == '_' || s[i] == '\\')
			p[j++] = '\\';
		p[j++] = (char)tolower((unsigned char)s[i]);
	}
	p[j++] = '%';
	p[j] = '\0';
	return p;
}

int pki_cert_search(struct pki *pki, const struct pki_cert_query *q, pki_cert_cb *cb,
	void *arg, struct sg_error *err)
{
	char sql[1024], email[PKI_EMAIL_MAX + 1];
	char *subj = NULL, *iss = NULL;
	struct store_stmt *st = NULL;
	struct pki_cert *c = NULL;
	int rc = -1, idx = 1, r;

	snprintf(sql, sizeof(sql), "SELECT c.thumbprint, c.der, c.is_root, c.has_key FROM "
		"pki_cert c%s WHERE 1 = 1%s%s%s%s%s%s%s ORDER BY c.thumbprint%s%s",
		q->email ? " JOIN pki_cert_email e ON e.thumbprint = c.thumbprint" : "",
		q->email ? " AND e.email = ?" : "",
		q->subject ? " AND lower(c.subject) LIKE ? ESCAPE '\\'" : "",
		q->issuer ? " AND lower(c.issuer) LIKE ? ESCAPE '\\'" : "",
		q->serial ? " AND c.serial = ?" : "",
		q->roots >= 0 ? " AND c.is_root = ?" : "",
		q->has_key >= 0 ? " AND c.has_key = ?" : "",
		q->valid_at ? " AND c.not_before <= ? AND c.not_after >= ?" : "",
		q->limit ? " LIMIT ?" : "", q->limit ? " OFFSET ?" : "");
	st = store_prepare(pki->db, sql, err);
	if (st == NULL)
		goto out;
	if (q->email) {
		sg_strlcpy(email, q->email, sizeof(email));
		sg_str_lower(email);
		store_bind_text(st, idx++, email);
	}
	if (q->subject) {
		subj = like_pattern(q->subject);
		store_bind_text(st, idx++, subj);
	}
	if (q->issuer) {
		iss = like_pattern(q->issuer);
		store_bind_text(st, idx++, iss);
	}
	if (q->serial) {
		char ser[130];

		sg_strlcpy(ser, q->serial, sizeof(ser));
		sg_str_lower(ser);
		store_bind_text(st, idx++, ser);
	}
	if (q->roots >= 0)
		store_bind_int64(st, idx++, q->roots);
	if (q->has_key >= 0)
		store_bind_int64(st, idx++, q->has_key);
	if (q->valid_at) {
		store_bind_int64(st, idx++, q->valid_at);
		store_bind_int64(st, idx++, q->valid_at);
	}
	if (q->limit) {
		store_bind_int64(st, idx++, (int64_t)q->limit);
		store_bind_int64(st, idx++, (int64_t)q->offset);
	}
	while ((r = store_stmt_step(st, err)) == 1) {
		c = pki_cert_from_row(st, err);
		if (c == NULL)
			goto out;
		r = cb(c, arg, err);
		pki_cert_free(&c);
		if (r < 0)
			goto out;
		if (r > 0)
			break;
	}
	if (r < 0)
		goto out;
	rc = 0;
out:
	store_stmt_free(&st);
	free(subj);
	free(iss);
	return rc;
}

int pki_cert_find_email(struct pki *pki, const char *addr,
	char (*thumbs_r)[PKI_THUMBPRINT_LEN + 1], size_t max, struct sg_error *err)
{
	char email[PKI_EMAIL_MAX + 1];
	struct store_stmt *st;
	size_t n = 0;
	int r = 0;

	if (strlen(addr) > PKI_EMAIL_MAX)
		return 0;
	sg_strlcpy(email, addr, sizeof(email));
	sg_str_lower(email);
	st = store_prepare(pki->db, "SELECT thumbprint FROM pki_cert_email WHERE email = ? "
		"ORDER BY thumbprint", err);
	if (st == NULL)
		return -1;
	store_bind_text(st, 1, email);
	while (n < max && (r = store_stmt_step(st, err)) == 1)
		sg_strlcpy(thumbs_r[n++], store_col_text(st, 0), PKI_THUMBPRINT_LEN + 1);
	store_stmt_free(&st);
	if (n < max && r < 0)
		return -1;
	return (int)n;
}

int pki_cert_usage(struct pki *pki, const char *thumbprint, pki_usage_cb *cb, void *arg,
	struct sg_error *err)
{
	static const char *const kinds[] = {"encrypt", "sign", "additional"};
	static const char *const owners[] = {"user", "domain", "global"};
	char t[PKI_THUMBPRINT_LEN + 1];
	struct store_stmt *st;
	int r, rc = -1;
	size_t k, o;

	sg_strlcpy(t, thumbprint, sizeof(t));
	if (strlen(thumbprint) != PKI_THUMBPRINT_LEN || pki_thumbprint_normalize(t, err) < 0)
		return -1;
	st = store_prepare(pki->db, "SELECT owner_kind, owner_name, kind FROM pki_selection "
		"WHERE thumbprint = ? ORDER BY owner_kind, owner_name, kind", err);
	if (st == NULL)
		return -1;
	store_bind_text(st, 1, t);
	while ((r = store_stmt_step(st, err)) == 1) {
		struct pki_owner owner;

		for (k = 0; k < 3 && strcmp(store_col_text(st, 2), kinds[k]) != 0; k++)
			;
		for (o = 0; o < 3 && strcmp(store_col_text(st, 0), owners[o]) != 0; o++)
			;
		if (k == 3 || o == 3)
			continue;
		owner.kind = (enum pki_owner_kind)o;
		owner.name = store_col_text(st, 1);
		r = cb(&owner, (enum pki_sel_kind)k, arg, err);
		if (r != 0)
			break;
	}
	if (r >= 0)
		rc = 0;
	store_stmt_free(&st);
	return rc;
}
