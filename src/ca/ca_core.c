/*
 * ca_core.c - the CAs of the built-in certificate authority: create (root +
 * intermediate, F-CA-1), list, default, and the CA settings (F-CA-2).
 *
 * Called by the CLI (and later the HTTP API and daemon) in the caller's
 * thread over the caller's store connection. Invariants: CA names are unique
 * case-insensitively (table ca, key name_lc); every common name of a CA
 * certificate is unique across CAs (table ca_cn); the default CA is the
 * setting "ca.default" and always names an existing CA once one exists. The
 * CA keys are generated here, used once to sign the two CA certificates and
 * then only exist encrypted in the PKI key store.
 */
#include "ca/ca_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

struct ca *ca_open(struct pki *pki, struct pki_keys *keys, struct sg_error *err)
{
	struct ca *ca;

	if (pki == NULL || keys == NULL) {
		sg_error_set(err, SG_E_INVAL, "ca_open: pki and keys are required");
		return NULL;
	}
	ca = sg_xcalloc(1, sizeof(*ca));
	ca->pki = pki;
	ca->keys = keys;
	ca->db = pki_store(pki);
	return ca;
}

void ca_close(struct ca **cp)
{
	if (cp == NULL || *cp == NULL)
		return;
	free(*cp);
	*cp = NULL;
}

/* ----------------------------------------------------------- enums/names */

static const struct {
	const char *name;
	enum ca_key_type t;
} key_names[] = {
	{"rsa2048", CA_KEY_RSA2048}, {"rsa3072", CA_KEY_RSA3072},
	{"rsa4096", CA_KEY_RSA4096}, {"p256", CA_KEY_P256}, {"p384", CA_KEY_P384},
	{"2048", CA_KEY_RSA2048}, {"3072", CA_KEY_RSA3072}, {"4096", CA_KEY_RSA4096},
	{"ec256", CA_KEY_P256}, {"ec384", CA_KEY_P384}, {"p-256", CA_KEY_P256},
	{"p-384", CA_KEY_P384},
};

int ca_key_type_parse(const char *s, enum ca_key_type *t_r)
{
	size_t i;

	for (i = 0; s != NULL && i < sizeof(key_names) / sizeof(key_names[0]); i++) {
		if (strcasecmp(s, key_names[i].name) == 0) {
			*t_r = key_names[i].t;
			return 0;
		}
	}
	return -1;
}

const char *ca_key_type_name(enum ca_key_type t)
{
	size_t i;

	for (i = 0; i < sizeof(key_names) / sizeof(key_names[0]); i++)
		if (key_names[i].t == t)
			return key_names[i].name;
	return "?";
}

int ca_digest_parse(const char *s, enum ca_digest *d_r)
{
	if (s == NULL)
		return -1;
	if (strcasecmp(s, "sha256") == 0 || strcasecmp(s, "sha-256") == 0)
		*d_r = CA_MD_SHA256;
	else if (strcasecmp(s, "sha384") == 0 || strcasecmp(s, "sha-384") == 0)
		*d_r = CA_MD_SHA384;
	else if (strcasecmp(s, "sha512") == 0 || strcasecmp(s, "sha-512") == 0)
		*d_r = CA_MD_SHA512;
	else
		return -1;
	return 0;
}

const char *ca_digest_name(enum ca_digest d)
{
	switch (d) {
	case CA_MD_SHA384: return "sha384";
	case CA_MD_SHA512: return "sha512";
	case CA_MD_SHA256: break;
	}
	return "sha256";
}

int ca_handler_parse(const char *s, enum ca_handler *h_r)
{
	if (s == NULL)
		return -1;
	if (strcasecmp(s, "built-in") == 0 || strcasecmp(s, "builtin") == 0)
		*h_r = CA_HANDLER_BUILTIN;
	else if (strcasecmp(s, "delayed") == 0 || strcasecmp(s, "delayed-built-in") == 0)
		*h_r = CA_HANDLER_DELAYED;
	else if (strcasecmp(s, "cmp") == 0)
		*h_r = CA_HANDLER_CMP;
	else
		return -1;
	return 0;
}

const char *ca_handler_name(enum ca_handler h)
{
	switch (h) {
	case CA_HANDLER_DELAYED: return "delayed";
	case CA_HANDLER_CMP: return "cmp";
	case CA_HANDLER_BUILTIN: break;
	}
	return "built-in";
}

void ca_name_lower(const char *in, char *out, size_t outsz)
{
	sg_strlcpy(out, in, outsz);
	sg_str_lower(out);
}

static int name_check(const char *name, struct sg_error *err)
{
	size_t i, n = name != NULL ? strlen(name) : 0;

	if (n == 0 || n > CA_NAME_MAX) {
		sg_error_set(err, SG_E_INVAL, "CA name must have 1..%d characters", CA_NAME_MAX);
		return -1;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		if (!isalnum(c) && c != '.' && c != '_' && c != '-') {
			sg_error_set(err, SG_E_INVAL,
				"CA name may only hold letters, digits, '.', '_' and '-'");
			return -1;
		}
	}
	return 0;
}

/* ------------------------------------------------------------- settings */

static const struct ca_setting_def settings[] = {
	{"validity_days", "1095", "validity of end-user certificates (days)", false},
	{"key_type", "rsa2048", "end-user key: rsa2048|rsa3072|rsa4096|p256|p384", false},
	{"signature_algorithm", "sha256", "end-user signature digest: sha256|sha384|sha512",
		false},
	{"add_crl_dp", "false", "add the CRL distribution point to end-user certificates",
		false},
	{"crl_dp", NULL, "CRL distribution point URL (http, https or ldap)", false},
	{"ca_email", NULL, "sender address of certificate (PFX) mails", false},
	{"pfx_password_length", "16", "random bytes in a generated PFX password (8..64)",
		false},
	{"store_password", "false", "store a PFX password as last_used_pfx_password",
		false},
	{"pfx_encryption", "aes256", "PKCS#12 protection: aes256|legacy3des", false},
	{"handler", "built-in", "default request handler: built-in|delayed|cmp", false},
	{"cmp_url", NULL, "CMP server http://host:port/path", false},
	{"cmp_key_type", "rsa2048", "key generated for CMP requests", false},
	{"cmp_ref", NULL, "CMP pre-shared secret reference (sender KID)", false},
	{"cmp_secret", NULL, "CMP pre-shared secret", true},
	{"cmp_client_cert", NULL, "CMP client certificate PEM file (instead of a secret)",
		false},
	{"cmp_client_key", NULL, "CMP client key PEM file", false},
	{"cmp_trusted", NULL, "PEM file with the CMP server's trusted certificate(s)",
		false},
	{"cmp_recipient", NULL, "CMP recipient name /CN=.../O=... (EJBCA: the CA's DN)",
		false},
	{NULL, NULL, NULL, false},
};

const struct ca_setting_def *ca_settings_catalogue(void)
{
	return settings;
}

static const struct ca_setting_def *setting_find(const char *name)
{
	size_t i;

	for (i = 0; settings[i].name != NULL; i++)
		if (strcmp(settings[i].name, name) == 0)
			return &settings[i];
	return NULL;
}

static int setting_validate(const char *name, const char *v, struct sg_error *err)
{
	enum ca_key_type kt;
	enum ca_digest md;
	enum ca_handler h;
	uint64_t u;
	bool b;
	int bad = 0;

	if (strcmp(name, "validity_days") == 0)
		bad = sg_parse_u64(v, CA_DAYS_MAX, &u) < 0 || u == 0;
	else if (strcmp(name, "pfx_password_length") == 0)
		bad = sg_parse_u64(v, 64, &u) < 0 || u < 8;
	else if (strcmp(name, "key_type") == 0 || strcmp(name, "cmp_key_type") == 0)
		bad = ca_key_type_parse(v, &kt) < 0;
	else if (strcmp(name, "signature_algorithm") == 0)
		bad = ca_digest_parse(v, &md) < 0;
	else if (strcmp(name, "add_crl_dp") == 0 || strcmp(name, "store_password") == 0)
		bad = sg_parse_bool(v, &b) < 0;
	else if (strcmp(name, "pfx_encryption") == 0)
		bad = strcmp(v, "aes256") != 0 && strcmp(v, "legacy3des") != 0;
	else if (strcmp(name, "handler") == 0)
		bad = ca_handler_parse(v, &h) < 0;
	else if (strcmp(name, "crl_dp") == 0)
		bad = (!sg_str_has_prefix_ci(v, "http://") && !sg_str_has_prefix_ci(v, "https://") &&
			!sg_str_has_prefix_ci(v, "ldap://")) || strlen(v) > 1024 ||
			strpbrk(v, " \t\r\n\"<>") != NULL;
	else if (strcmp(name, "cmp_url") == 0)
		bad = !sg_str_has_prefix_ci(v, "http://") || strlen(v) > 1024;
	else if (strcmp(name, "ca_email") == 0)
		bad = !sg_addr_is_valid(v);
	else if (strcmp(name, "cmp_recipient") == 0)
		bad = v[0] != '/' || strchr(v, '=') == NULL || strlen(v) > 1024;
	else
		bad = strlen(v) > 4096;
	if (bad) {
		sg_error_set(err, SG_E_INVAL, "CA setting %s: bad value", name);
		return -1;
	}
	return 0;
}

int ca_setting_get(struct ca *ca, const char *name, char **value_r, struct sg_error *err)
{
	const struct ca_setting_def *d = setting_find(name);
	char key[80];
	int r;

	*value_r = NULL;
	if (d == NULL) {
		sg_error_set(err, SG_E_NOTFOUND, "unknown CA setting %s", name);
		return -1;
	}
	snprintf(key, sizeof(key), "ca.%s", name);
	r = store_setting_get(ca->db, key, value_r, err);
	if (r != 0)
		return r;
	if (d->def == NULL)
		return 0;
	*value_r = sg_xstrdup(d->def);
	return 1;
}

int ca_setting_set(struct ca *ca, const char *name, const char *value,
	struct sg_error *err)
{
	char key[80];

	if (setting_find(name) == NULL) {
		sg_error_set(err, SG_E_NOTFOUND, "unknown CA setting %s", name);
		return -1;
	}
	snprintf(key, sizeof(key), "ca.%s", name);
	if (value == NULL)
		return store_setting_delete(ca->db, key, err);
	if (setting_validate(name, value, err) < 0)
		return -1;
	return store_setting_set(ca->db, key, value, err);
}

int ca_setting_int(struct ca *ca, const char *name, int64_t min, int64_t max,
	int64_t *v_r, struct sg_error *err)
{
	char *v = NULL;
	int r = ca_setting_get(ca, name, &v, err);

	if (r < 0)
		return -1;
	if (r == 0 || sg_parse_i64(v, min, max, v_r) < 0) {
		sg_error_set(err, SG_E_CONFIG, "CA setting %s is not set to a number", name);
		free(v);
		return -1;
	}
	free(v);
	return 0;
}

int ca_setting_flag(struct ca *ca, const char *name, bool *v_r, struct sg_error *err)
{
	char *v = NULL;
	int r = ca_setting_get(ca, name, &v, err);

	if (r < 0)
		return -1;
	*v_r = false;
	if (r > 0 && sg_parse_bool(v, v_r) < 0) {
		free(v);
		sg_error_set(err, SG_E_CONFIG, "CA setting %s is not a boolean", name);
		return -1;
	}
	free(v);
	return 0;
}

/* --------------------------------------------------------------- create */

/* cn_claim - record a CA common name; SG_E_EXISTS when another CA uses it */
static int cn_claim(struct ca *ca, const char *cn, const char *name_lc,
	struct sg_error *err)
{
	struct store_stmt *st;
	char lc[CA_VALUE_MAX + 1];
	int r;

	ca_name_lower(cn, lc, sizeof(lc));
	st = store_prepare(ca->db, "INSERT INTO ca_cn (cn_lc, ca_name_lc) VALUES (?, ?)", err);
	if (st == NULL)
		return -1;
	store_bind_text(st, 1, lc);
	store_bind_text(st, 2, name_lc);
	r = store_stmt_step(st, err);
	store_stmt_free(&st);
	if (r < 0 && err != NULL && err->code == SG_E_EXISTS)
		sg_error_set(err, SG_E_EXISTS, "common name '%s' is already used by a CA", cn);
	return r < 0 ? -1 : 0;
}

static X509 *ca_cert_build(const struct ca_subject *subj, X509 *issuer, EVP_PKEY *key,
	EVP_PKEY *issuer_key, unsigned days, int pathlen, enum ca_digest md,
	struct sg_error *err)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();
	char bc[40];

	if (x == NULL || n == NULL || X509_set_version(x, X509_VERSION_3) != 1)
		goto ossl;
	if (ca_serial_set(x, err) < 0 || ca_name_build(n, subj, err) < 0)
		goto fail;
	if (X509_set_subject_name(x, n) != 1 ||
		X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : n) != 1 ||
		X509_gmtime_adj(X509_getm_notBefore(x), -300) == NULL ||
		X509_time_adj_ex(X509_getm_notAfter(x), (int)days, 0, NULL) == NULL ||
		X509_set_pubkey(x, key) != 1)
		goto ossl;
	if (issuer != NULL &&
		ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notAfter(issuer)) > 0 &&
		X509_set1_notAfter(x, X509_get0_notAfter(issuer)) != 1)
		goto ossl;
	if (pathlen >= 0)
		snprintf(bc, sizeof(bc), "critical,CA:TRUE,pathlen:%d", pathlen);
	else
		snprintf(bc, sizeof(bc), "critical,CA:TRUE");
	if (ca_ext_add_conf(x, issuer != NULL ? issuer : x, NID_basic_constraints, bc, err) < 0 ||
		ca_ext_add_conf(x, issuer != NULL ? issuer : x, NID_key_usage,
			"critical,keyCertSign,cRLSign,digitalSignature", err) < 0 ||
		ca_ext_add_conf(x, issuer != NULL ? issuer : x, NID_subject_key_identifier,
			"hash", err) < 0)
		goto fail;
	if (issuer != NULL && ca_ext_add_conf(x, issuer, NID_authority_key_identifier,
		"keyid:always", err) < 0)
		goto fail;
	if (X509_sign(x, issuer_key, EVP_get_digestbyname(ca_md_ossl(md))) <= 0)
		goto ossl;
	X509_NAME_free(n);
	return x;
ossl:
	sg_error_set_openssl(err, SG_E_CRYPTO, "build CA certificate");
fail:
	X509_NAME_free(n);
	X509_free(x);
	return NULL;
}

static int ca_row_insert(struct ca *ca, const char *name, const char *root_t,
	const char *inter_t, const struct ca_create_opts *o, struct sg_error *err)
{
	struct store_stmt *st;
	char lc[CA_NAME_MAX + 1];
	int r;

	ca_name_lower(name, lc, sizeof(lc));
	st = store_prepare(ca->db, "INSERT INTO ca (name_lc, name, root_thumbprint, "
		"inter_thumbprint, key_type, sig_md, crl_number, created) "
		"VALUES (?, ?, ?, ?, ?, ?, 0, ?)", err);
	if (st == NULL)
		return -1;
	store_bind_text(st, 1, lc);
	store_bind_text(st, 2, name);
	store_bind_text(st, 3, root_t);
	store_bind_text(st, 4, inter_t);
	store_bind_text(st, 5, ca_key_type_name(o->key));
	store_bind_text(st, 6, ca_digest_name(o->md));
	store_bind_int64(st, 7, sg_now());
	r = store_stmt_step(st, err);
	store_stmt_free(&st);
	if (r < 0 && err != NULL && err->code == SG_E_EXISTS)
		sg_error_set(err, SG_E_EXISTS, "a CA named '%s' exists", name);
	return r < 0 ? -1 : 0;
}

static int ca_count(struct ca *ca, int64_t *n_r, struct sg_error *err)
{
	struct store_stmt *st = store_prepare(ca->db, "SELECT COUNT(*) FROM ca", err);
	int r;

	if (st == NULL)
		return -1;
	r = store_stmt_step(st, err);
	if (r > 0)
		*n_r = store_col_int64(st, 0);
	store_stmt_free(&st);
	return r < 0 ? -1 : 0;
}

/* create_opts_check - fill defaults into the copies the caller passes */
static int create_opts_check(const struct ca_create_opts *o, struct ca_subject *root,
	struct ca_subject *inter, char *rcn, char *icn, size_t cnsz, struct sg_error *err)
{
	if (name_check(o->name, err) < 0)
		return -1;
	if (o->root_days > CA_DAYS_MAX || o->inter_days > CA_DAYS_MAX) {
		sg_error_set(err, SG_E_INVAL, "validity must be at most %u days", CA_DAYS_MAX);
		return -1;
	}
	*root = o->root;
	*inter = o->inter;
	if (root->cn == NULL || root->cn[0] == '\0') {
		snprintf(rcn, cnsz, "%s Root CA", o->name);
		root->cn = rcn;
	}
	if (inter->cn == NULL || inter->cn[0] == '\0') {
		snprintf(icn, cnsz, "%s Intermediate CA", o->name);
		inter->cn = icn;
	}
	if (inter->org == NULL)
		inter->org = root->org;
	if (inter->email == NULL)
		inter->email = root->email;
	if (inter->first_name == NULL)
		inter->first_name = root->first_name;
	if (inter->last_name == NULL)
		inter->last_name = root->last_name;
	if (ca_subject_check(root, "root", err) < 0 ||
		ca_subject_check(inter, "intermediate", err) < 0)
		return -1;
	if (strcasecmp(root->cn, inter->cn) == 0) {
		sg_error_set(err, SG_E_INVAL,
			"the root and intermediate common names must differ");
		return -1;
	}
	return 0;
}

int ca_create(struct ca *ca, const struct ca_create_opts *o, struct ca_info *info_r,
	struct sg_error *err)
{
	struct ca_subject root_s, inter_s;
	char rcn[CA_NAME_MAX + 32], icn[CA_NAME_MAX + 32], lc[CA_NAME_MAX + 1];
	char root_t[PKI_THUMBPRINT_LEN + 1], inter_t[PKI_THUMBPRINT_LEN + 1];
	EVP_PKEY *rk = NULL, *ik = NULL;
	X509 *rx = NULL, *ix = NULL;
	struct pki_cert *rc_cert = NULL;
	int64_t n = 0;
	int rc = -1;

	if (create_opts_check(o, &root_s, &inter_s, rcn, icn, sizeof(rcn), err) < 0)
		return -1;
	/* keys and certificates first: the slow part stays outside the transaction */
	rk = ca_key_generate(o->key, err);
	ik = rk != NULL ? ca_key_generate(o->key, err) : NULL;
	if (ik == NULL)
		goto out;
	rx = ca_cert_build(&root_s, NULL, rk, rk, o->root_days ? o->root_days : 7300, -1,
		o->md, err);
	if (rx == NULL)
		goto out;
	ix = ca_cert_build(&inter_s, rx, ik, rk, o->inter_days ? o->inter_days : 3650, 0,
		o->md, err);
	if (ix == NULL)
		goto out;
	ca_name_lower(o->name, lc, sizeof(lc));

	if (pki_batch_begin(ca->pki, err) < 0)
		goto out;
	rc = ca_row_insert(ca, o->name, "", "", o, err);
	if (rc == 0)
		rc = cn_claim(ca, root_s.cn, lc, err);
	if (rc == 0)
		rc = cn_claim(ca, inter_s.cn, lc, err);
	if (rc == 0)
		rc = ca_keypair_store(ca, rk, rx, root_t, err);
	if (rc == 0)
		rc = ca_keypair_store(ca, ik, ix, inter_t, err);
	if (rc == 0) {
		rc_cert = pki_cert_from_x509(rx, err);
		rc = rc_cert != NULL && pki_cert_add(ca->pki, rc_cert, PKI_ADD_ROOT, err) >= 0 ?
			0 : -1;
	}
	if (rc == 0) {
		struct store_stmt *st = store_prepare(ca->db, "UPDATE ca SET root_thumbprint = ?, "
			"inter_thumbprint = ? WHERE name_lc = ?", err);

		rc = st != NULL ? 0 : -1;
		if (st != NULL) {
			store_bind_text(st, 1, root_t);
			store_bind_text(st, 2, inter_t);
			store_bind_text(st, 3, lc);
			rc = store_stmt_step(st, err) < 0 ? -1 : 0;
			store_stmt_free(&st);
		}
	}
	if (rc == 0)
		rc = ca_count(ca, &n, err);
	if (rc == 0 && (n == 1 || (o->flags & CA_CREATE_DEFAULT)))
		rc = store_setting_set(ca->db, "ca.default", lc, err);
	if (rc == 0)
		rc = pki_generation_bump(ca->pki, err);
	rc = pki_batch_end(ca->pki, rc, err);
	if (rc == 0 && info_r != NULL && ca_get(ca, o->name, info_r, err) != 1)
		rc = -1;
	if (rc == 0)
		sg_log(SG_LOG_INFO, "ca: created CA %s (%s, %s)", o->name,
			ca_key_type_name(o->key), ca_digest_name(o->md));
out:
	pki_cert_free(&rc_cert);
	X509_free(rx);
	X509_free(ix);
	EVP_PKEY_free(rk);
	EVP_PKEY_free(ik);
	return rc;
}

/* ----------------------------------------------------------- get / list */

static const char ca_cols[] = "SELECT name, root_thumbprint, inter_thumbprint, key_type, "
	"sig_md, created, crl_number FROM ca";

static int row_info(struct ca *ca, struct store_stmt *st, const char *def_lc,
	struct ca_info *i, struct sg_error *err)
{
	struct pki_cert *c = NULL;
	const char *v;
	char lc[CA_NAME_MAX + 1];
	int r;

	memset(i, 0, sizeof(*i));
	v = store_col_text(st, 0);
	sg_strlcpy(i->name, v != NULL ? v : "", sizeof(i->name));
	v = store_col_text(st, 1);
	sg_strlcpy(i->root_thumbprint, v != NULL ? v : "", sizeof(i->root_thumbprint));
	v = store_col_text(st, 2);
	sg_strlcpy(i->inter_thumbprint, v != NULL ? v : "", sizeof(i->inter_thumbprint));
	if (ca_key_type_parse(store_col_text(st, 3), &i->key) < 0)
		i->key = CA_KEY_RSA2048;
	if (ca_digest_parse(store_col_text(st, 4), &i->md) < 0)
		i->md = CA_MD_SHA256;
	i->created = store_col_int64(st, 5);
	i->crl_number = store_col_int64(st, 6);
	ca_name_lower(i->name, lc, sizeof(lc));
	i->is_default = def_lc != NULL && strcmp(lc, def_lc) == 0;
	r = pki_cert_get(ca->pki, i->root_thumbprint, &c, err);
	if (r < 0)
		return -1;
	if (r > 0)
		sg_strlcpy(i->root_subject, c->subject, sizeof(i->root_subject));
	pki_cert_free(&c);
	r = pki_cert_get(ca->pki, i->inter_thumbprint, &c, err);
	if (r < 0)
		return -1;
	if (r > 0) {
		sg_strlcpy(i->inter_subject, c->subject, sizeof(i->inter_subject));
		i->not_after = c->not_after;
	}
	pki_cert_free(&c);
	return 0;
}

int ca_get(struct ca *ca, const char *name, struct ca_info *info_r, struct sg_error *err)
{
	struct store_stmt *st = NULL;
	char *def = NULL, lc[CA_NAME_MAX + 1], sql[256];
	int r;

	if (store_setting_get(ca->db, "ca.default", &def, err) < 0)
		return -1;
	if (name == NULL && def == NULL)
		return 0;
	ca_name_lower(name != NULL ? name : def, lc, sizeof(lc));
	snprintf(sql, sizeof(sql), "%s WHERE name_lc = ?", ca_cols);
	st = store_prepare(ca->db, sql, err);
	r = st == NULL ? -1 : 0;
	if (st != NULL) {
		store_bind_text(st, 1, lc);
		r = store_stmt_step(st, err);
		if (r > 0 && row_info(ca, st, def, info_r, err) < 0)
			r = -1;
	}
	store_stmt_free(&st);
	free(def);
	return r;
}

int ca_list(struct ca *ca, ca_info_cb *cb, void *arg, struct sg_error *err)
{
	struct store_stmt *st = NULL;
	struct ca_info i;
	char *def = NULL, sql[256];
	int r, cr;

	if (store_setting_get(ca->db, "ca.default", &def, err) < 0)
		return -1;
	snprintf(sql, sizeof(sql), "%s ORDER BY name_lc", ca_cols);
	st = store_prepare(ca->db, sql, err);
	r = st == NULL ? -1 : 0;
	while (st != NULL && (r = store_stmt_step(st, err)) > 0) {
		if (row_info(ca, st, def, &i, err) < 0) {
			r = -1;
			break;
		}
		cr = cb(&i, arg, err);
		if (cr != 0) {
			r = cr < 0 ? -1 : 0;
			break;
		}
	}
	store_stmt_free(&st);
	free(def);
	return r < 0 ? -1 : 0;
}

int ca_default_set(struct ca *ca, const char *name, struct sg_error *err)
{
	struct ca_info i;
	char lc[CA_NAME_MAX + 1];
	int r = ca_get(ca, name, &i, err);

	if (r < 0)
		return -1;
	if (r == 0 || name == NULL) {
		sg_error_set(err, SG_E_NOTFOUND, "no CA named '%s'", name != NULL ? name : "");
		return -1;
	}
	ca_name_lower(i.name, lc, sizeof(lc));
	return store_setting_set(ca->db, "ca.default", lc, err);
}
