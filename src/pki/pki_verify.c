/*
 * pki_verify.c - certificate validation (RFC 5280 path validation through
 * OpenSSL's X509_verify_cert) with our stores: roots and white-listed
 * certificates are the trust anchors, other stored certificates with the
 * wanted subject names are untrusted path candidates (so cross-signed paths
 * work); then key usage/EKU for the purpose, CRLs from the CRL store (checked
 * here, not by OpenSSL, so that O(log n) lookups in the store replace loading
 * whole CRLs), and the CTL (black inherited down the chain, white not).
 *
 * Any thread, own struct pki. Verdicts at "now" are cached per context in a
 * direct-mapped table, tagged with the store's verdict generation (settings
 * "pki.generation", bumped on any change to certificates, keys, selections,
 * roots, CRLs or the CTL) and an expiry: 10 minutes, or earlier when a
 * notAfter in the chain or a CRL's nextUpdate passes, or a CRL's thisUpdate
 * or revocation date comes (pki_crl_check).
 * SPEC F-PKI-3, F-PKI-6.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "pki/pki_int.h"

#define PKI_CACHE_TTL 600
#define PKI_CANDIDATES_PER_NAME 16

void pki_x509_thumbprint(X509 *x, char *out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	if (X509_digest(x, EVP_sha512(), md, &len) != 1 || len != 64) {
		out[0] = '\0';
		return;
	}
	sg_hex(out, md, 64);
}

/* Data for the verify callback (X509_STORE_CTX app data). */
struct verify_data {
	char (*allow_expired)[PKI_THUMBPRINT_LEN + 1];
	size_t n_allow_expired;
};

/* verify_cb - forgive expiry of white-listed "allow expired" certificates */
static int verify_cb(int ok, X509_STORE_CTX *ctx)
{
	struct verify_data *vd = X509_STORE_CTX_get_app_data(ctx);
	int e = X509_STORE_CTX_get_error(ctx);
	char t[PKI_THUMBPRINT_LEN + 1];
	size_t i;

	if (ok || vd == NULL)
		return ok;
	if (e != X509_V_ERR_CERT_HAS_EXPIRED && e != X509_V_ERR_CERT_NOT_YET_VALID)
		return ok;
	pki_x509_thumbprint(X509_STORE_CTX_get_current_cert(ctx), t);
	for (i = 0; i < vd->n_allow_expired; i++) {
		if (strcmp(vd->allow_expired[i], t) == 0) {
			X509_STORE_CTX_set_error(ctx, X509_V_OK);
			return 1;
		}
	}
	return ok;
}

struct gather {
	X509_STORE *trusted;
	STACK_OF(X509) *untrusted;
	STACK_OF(X509) *held;      /* every candidate, owns a reference */
	char (*seen)[PKI_THUMBPRINT_LEN + 1];
	size_t n_seen;
	struct verify_data vd;
};

/* gather_seen - true if thumbprint already gathered (else remember it) */
static bool gather_seen(struct gather *g, const char *t)
{
	size_t i;

	for (i = 0; i < g->n_seen; i++) {
		if (strcmp(g->seen[i], t) == 0)
			return true;
	}
	sg_strlcpy(g->seen[g->n_seen++], t, PKI_THUMBPRINT_LEN + 1);
	return false;
}

/* gather_add - classify one candidate: anchor (root or white) or untrusted */
static int gather_add(struct pki *pki, struct gather *g, X509 *x, const char *t,
	bool is_root, struct sg_error *err)
{
	struct pki_ctl_entry e;
	int found = pki_ctl_get(pki, t, &e, err);

	if (found < 0)
		return -1;
	if (found == 1 && e.kind == PKI_CTL_WHITE) {
		is_root = true;
		if (e.allow_expired)
			sg_strlcpy(g->vd.allow_expired[g->vd.n_allow_expired++], t,
				PKI_THUMBPRINT_LEN + 1);
	}
	if (!sk_X509_push(g->held, x)) {
		sg_error_set(err, SG_E_NOMEM, "pki: out of memory");
		return -1;
	}
	X509_up_ref(x);
	if (is_root)
		X509_STORE_add_cert(g->trusted, x);
	else
		sk_X509_push(g->untrusted, x);
	return 0;
}

/* gather_name - load stored certificates whose subject is name */
static int gather_name(struct pki *pki, struct gather *g, const X509_NAME *name,
	struct sg_error *err)
{
	struct store_stmt *st;
	char h[9];
	int r, rc = -1;

	pki_name_hash(name, h);
	st = store_prepare(pki->db, "SELECT thumbprint, der, is_root FROM pki_cert WHERE "
		"subject_hash = ? LIMIT 16", err);
	if (st == NULL)
		return -1;
	store_bind_text(st, 1, h);
	while ((r = store_stmt_step(st, err)) == 1) {
		const char *t = store_col_text(st, 0);
		size_t len = 0;
		const unsigned char *der = store_col_blob(st, 1, &len);
		X509 *x;

		if (g->n_seen >= PKI_CHAIN_MAX_CERTS)
			break;
		if (gather_seen(g, t))
			continue;
		x = pki_x509_from_der(der, len);
		if (x == NULL)
			continue;  /* cannot happen for rows we wrote; skip, do not fail */
		if (X509_NAME_cmp(X509_get_subject_name(x), name) != 0) {
			X509_free(x);  /* hash collision */
			continue;
		}
		r = gather_add(pki, g, x, t, store_col_int64(st, 2) != 0, err);
		X509_free(x);
		if (r < 0)
			goto out;
	}
	if (r < 0)
		goto out;
	rc = 0;
out:
	store_stmt_free(&st);
	return rc;
}

/* gather_all - breadth-first over issuer names, bounded in depth and count */
static int gather_all(struct pki *pki, struct gather *g, X509 *leaf, struct sg_error *err)
{
	int depth, i, from = 0, to;
	char t[PKI_THUMBPRINT_LEN + 1];
	struct pki_ctl_entry e;
	int found;

	/* The leaf itself may be white-listed (an anchor for itself). */
	pki_x509_thumbprint(leaf, t);
	found = pki_ctl_get(pki, t, &e, err);
	if (found < 0)
		return -1;
	if (found == 1 && e.kind == PKI_CTL_WHITE) {
		X509_STORE_add_cert(g->trusted, leaf);
		if (e.allow_expired)
			sg_strlcpy(g->vd.allow_expired[g->vd.n_allow_expired++], t,
				PKI_THUMBPRINT_LEN + 1);
	}
	if (gather_name(pki, g, X509_get_issuer_name(leaf), err) < 0)
		return -1;
	for (depth = 1; depth < PKI_CHAIN_MAX_DEPTH; depth++) {
		to = sk_X509_num(g->held);
		if (from == to)
			break;
		for (i = from; i < to; i++) {
			X509 *x = sk_X509_value(g->held, i);

			if ((X509_get_extension_flags(x) & EXFLAG_SI) != 0)
				continue;  /* self-issued: top of a path */
			if (gather_name(pki, g, X509_get_issuer_name(x), err) < 0)
				return -1;
		}
		from = to;
	}
	return 0;
}

int pki_chain_build(struct pki *pki, X509 *leaf, int64_t at, STACK_OF(X509) **chain_r,
	int *x509_err_r, int *err_depth_r, struct sg_error *err)
{
	char seen[PKI_CHAIN_MAX_CERTS + 1][PKI_THUMBPRINT_LEN + 1];
	char allow[PKI_CHAIN_MAX_CERTS + 1][PKI_THUMBPRINT_LEN + 1];
	struct gather g;
	X509_STORE_CTX *ctx = NULL;
	X509_VERIFY_PARAM *param;
	int rc = -1, ok;

	*chain_r = NULL;
	memset(&g, 0, sizeof(g));
	g.seen = seen;
	g.vd.allow_expired = allow;
	g.trusted = X509_STORE_new();
	g.untrusted = sk_X509_new_null();
	g.held = sk_X509_new_null();
	ctx = X509_STORE_CTX_new();
	if (g.trusted == NULL || g.untrusted == NULL || g.held == NULL || ctx == NULL) {
		sg_error_set(err, SG_E_NOMEM, "pki: out of memory");
		goto out;
	}
	if (gather_all(pki, &g, leaf, err) < 0)
		goto out;
	X509_STORE_set_verify_cb(g.trusted, verify_cb);
	if (X509_STORE_CTX_init(ctx, g.trusted, leaf, g.untrusted) != 1) {
		sg_error_set_openssl(err, SG_E_CRYPTO, "pki: verify context");
		goto out;
	}
	X509_STORE_CTX_set_app_data(ctx, &g.vd);
	param = X509_STORE_CTX_get0_param(ctx);
	/* White-listed certificates that are not self-signed are anchors too. */
	X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_PARTIAL_CHAIN);
	X509_VERIFY_PARAM_set_time(param, (time_t)at);
	ok = X509_verify_cert(ctx);
	*x509_err_r = ok == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
	if (ok != 1 && *x509_err_r == X509_V_OK)
		*x509_err_r = X509_V_ERR_UNSPECIFIED;
	*err_depth_r = X509_STORE_CTX_get_error_depth(ctx);
	*chain_r = X509_STORE_CTX_get1_chain(ctx);
	if (*chain_r == NULL) {
		*chain_r = sk_X509_new_null();
		if (*chain_r == NULL || !sk_X509_push(*chain_r, leaf)) {
			sg_error_set(err, SG_E_NOMEM, "pki: out of memory");
			goto out;
		}
		X509_up_ref(leaf);
	}
	rc = 0;
out:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(g.trusted);
	sk_X509_free(g.untrusted);
	sk_X509_pop_free(g.held, X509_free);
	return rc;
}

/* subject_short - a subject for a reason text */
static void subject_short(X509 *x, char *out, size_t outsz)
{
	char *s = pki_name_str(X509_get_subject_name(x));

	sg_log_esc(out, outsz, s, strlen(s));
	free(s);
}

/* path_reason - human text for an OpenSSL verify error at depth */
static void path_reason(STACK_OF(X509) *chain, int e, int depth, char *out, size_t outsz)
{
	X509 *x = depth >= 0 && depth < sk_X509_num(chain) ? sk_X509_value(chain, depth) : NULL;
	char when[32], who[200] = "";

	if (x != NULL && depth > 0) {
		char subj[160];

		subject_short(x, subj, sizeof(subj));
		snprintf(who, sizeof(who), "issuer \"%s\" ", subj);
	}
	switch (e) {
	case X509_V_ERR_CERT_HAS_EXPIRED:
		sg_time_iso8601(x ? pki_asn1_time(X509_get0_notAfter(x)) : 0, when, sizeof(when));
		snprintf(out, outsz, "%sexpired on %s", who, when);
		break;
	case X509_V_ERR_CERT_NOT_YET_VALID:
		sg_time_iso8601(x ? pki_asn1_time(X509_get0_notBefore(x)) : 0, when, sizeof(when));
		snprintf(out, outsz, "%snot valid before %s", who, when);
		break;
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
		snprintf(out, outsz, "no path to a trusted root");
		break;
	case X509_V_ERR_CERT_SIGNATURE_FAILURE:
		snprintf(out, outsz, "%sbad signature (not signed by its issuer)", who);
		break;
	case X509_V_ERR_INVALID_CA:
		snprintf(out, outsz, "%sis not a CA certificate", who);
		break;
	default:
		snprintf(out, outsz, "%spath validation failed: %s", who,
			X509_verify_cert_error_string(e));
		break;
	}
}

/* usage_ok - key usage / EKU of the leaf for purpose; reason on failure */
static bool usage_ok(X509 *x, enum pki_purpose purpose, char *out, size_t outsz)
{
	uint32_t fl = X509_get_extension_flags(x);
	uint32_t ku = X509_get_key_usage(x);
	EVP_PKEY *pk = X509_get0_pubkey(x);
	int id = pk != NULL ? EVP_PKEY_get_base_id(pk) : 0;
	bool agree = id == EVP_PKEY_EC || id == EVP_PKEY_X25519 || id == EVP_PKEY_X448 ||
		id == EVP_PKEY_DH;
	bool has_ku = (fl & EXFLAG_KUSAGE) != 0;
	bool enc_ok, sig_ok;

	if (purpose == PKI_PURPOSE_CRL_SIGN) {
		/* a CA's EKU (if any) constrains what it issues, not its CRLs */
		if (has_ku && (ku & KU_CRL_SIGN) == 0) {
			snprintf(out, outsz, "key usage does not allow signing CRLs "
				"(cRLSign missing)");
			return false;
		}
		return true;
	}
	if ((fl & EXFLAG_XKUSAGE) != 0 &&
		(X509_get_extended_key_usage(x) & (XKU_SMIME | XKU_ANYEKU)) == 0) {
		snprintf(out, outsz, "extended key usage does not include emailProtection");
		return false;
	}
	enc_ok = !has_ku || (ku & (agree ? KU_KEY_AGREEMENT : KU_KEY_ENCIPHERMENT)) != 0;
	sig_ok = !has_ku || (ku & (KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION)) != 0;
	switch (purpose) {
	case PKI_PURPOSE_ENCRYPT:
		if (!enc_ok)
			snprintf(out, outsz, "key usage does not allow encryption (%s missing)",
				agree ? "keyAgreement" : "keyEncipherment");
		return enc_ok;
	case PKI_PURPOSE_SIGN:
		if (!sig_ok)
			snprintf(out, outsz, "key usage does not allow signing "
				"(digitalSignature/nonRepudiation missing)");
		return sig_ok;
	case PKI_PURPOSE_ANY:
	default:
		if (!enc_ok && !sig_ok)
			snprintf(out, outsz, "key usage allows neither signing nor encryption");
		return enc_ok || sig_ok;
	}
}

/* black_check - the first black-listed certificate of chain; 1 found, 0, -1 */
static int black_check(struct pki *pki, STACK_OF(X509) *chain, char *out, size_t outsz,
	struct sg_error *err)
{
	char t[PKI_THUMBPRINT_LEN + 1], subj[160];
	struct pki_ctl_entry e;
	int i, found;

	for (i = 0; i < sk_X509_num(chain); i++) {
		pki_x509_thumbprint(sk_X509_value(chain, i), t);
		found = pki_ctl_get(pki, t, &e, err);
		if (found < 0)
			return -1;
		if (found == 1 && e.kind == PKI_CTL_BLACK) {
			if (i == 0) {
				snprintf(out, outsz, "black-listed");
			} else {
				subject_short(sk_X509_value(chain, i), subj, sizeof(subj));
				snprintf(out, outsz, "black-listed (issuer \"%s\" is black-listed)",
					subj);
			}
			return 1;
		}
	}
	return 0;
}

/* crl_walk - revocation of each non-anchor certificate of chain; lowers
 * *expires_r to when a CRL's answer may change */
static int crl_walk(struct pki *pki, STACK_OF(X509) *chain, int64_t at, unsigned flags,
	struct pki_verdict *v, int64_t *expires_r, struct sg_error *err)
{
	int i, r;

	for (i = 0; i + 1 < sk_X509_num(chain); i++) {
		char reason[PKI_REASON_MAX] = "", warn[PKI_REASON_MAX] = "";

		r = pki_crl_check(pki, sk_X509_value(chain, i), sk_X509_value(chain, i + 1), at,
			reason, sizeof(reason), warn, sizeof(warn), expires_r, err);
		if (r < 0)
			return -1;
		if (warn[0] != '\0' && v->warning[0] == '\0')
			sg_strlcpy(v->warning, warn, sizeof(v->warning));
		if (r == 1 || (r == 2 && (flags & PKI_VERIFY_CRL_REQUIRED) != 0)) {
			if (i > 0 && r == 1) {
				char subj[120];

				subject_short(sk_X509_value(chain, i), subj, sizeof(subj));
				snprintf(v->reason, sizeof(v->reason), "issuer \"%s\" %s", subj,
					reason);
			} else {
				sg_strlcpy(v->reason, reason, sizeof(v->reason));
			}
			return 1;
		}
	}
	return 0;
}

/* verify_uncached - the full verdict */
static int verify_uncached(struct pki *pki, X509 *x, enum pki_purpose purpose, int64_t at,
	unsigned flags, struct pki_verdict *v, int64_t *expires_r, struct sg_error *err)
{
	STACK_OF(X509) *chain = NULL;
	int xerr = X509_V_OK, depth = 0, r, i, rc = -1;

	memset(v, 0, sizeof(*v));
	*expires_r = at + PKI_CACHE_TTL;
	if (pki_chain_build(pki, x, at, &chain, &xerr, &depth, err) < 0)
		goto out;
	for (i = 0; i < sk_X509_num(chain); i++) {
		int64_t na = pki_asn1_time(X509_get0_notAfter(sk_X509_value(chain, i)));

		if (na >= at && na < *expires_r)
			*expires_r = na + 1;
	}
	/* Black wins over everything, including white and a failed path. */
	r = black_check(pki, chain, v->reason, sizeof(v->reason), err);
	if (r != 0) {
		rc = r < 0 ? -1 : 0;
		goto out;
	}
	if (xerr != X509_V_OK) {
		path_reason(chain, xerr, depth, v->reason, sizeof(v->reason));
		rc = 0;
		goto out;
	}
	if (!usage_ok(x, purpose, v->reason, sizeof(v->reason))) {
		rc = 0;
		goto out;
	}
	r = crl_walk(pki, chain, at, flags, v, expires_r, err);
	if (r < 0)
		goto out;
	if (r == 0)
		v->is_valid = true;
	rc = 0;
out:
	sk_X509_pop_free(chain, X509_free);
	return rc;
}

/* cache_slot - direct-mapped by the thumbprint's leading bits and purpose */
static struct pki_cache_slot *cache_slot(struct pki *pki, const char *t,
	enum pki_purpose purpose)
{
	unsigned long h = strtoul((char[9]){t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], 0},
		NULL, 16);

	return &pki->cache[(h * 3 + (unsigned)purpose) % PKI_CACHE_SLOTS];
}

/* cache_get - the cached verdict of thumbprint for (purpose, flags) under
 * generation gen, still current at now; NULL if none */
static const struct pki_cache_slot *cache_get(struct pki *pki, const char *thumbprint,
	enum pki_purpose purpose, unsigned flags, int64_t gen, int64_t now)
{
	const struct pki_cache_slot *slot = cache_slot(pki, thumbprint, purpose);

	if (slot->generation == gen && slot->expires > now &&
		slot->purpose == (unsigned char)purpose &&
		slot->flags == (unsigned char)flags &&
		strcmp(slot->thumbprint, thumbprint) == 0)
		return slot;
	return NULL;
}

/* verify_gen - pki_cert_verify at now with the generation already read;
 * *expires_r is when the verdict stops holding */
static int verify_gen(struct pki *pki, const struct pki_cert *c, enum pki_purpose purpose,
	unsigned flags, int64_t gen, struct pki_verdict *v_r, int64_t *expires_r,
	struct sg_error *err)
{
	const struct pki_cache_slot *hit;
	struct pki_cache_slot *slot;
	int64_t now = sg_now(), expires;

	hit = cache_get(pki, c->thumbprint, purpose, flags, gen, now);
	if (hit != NULL) {
		pki->cache_hits++;
		*v_r = hit->v;
		*expires_r = hit->expires;
		return 0;
	}
	pki->cache_misses++;
	if (verify_uncached(pki, c->x509, purpose, now, flags, v_r, &expires, err) < 0)
		return -1;
	slot = cache_slot(pki, c->thumbprint, purpose);
	sg_strlcpy(slot->thumbprint, c->thumbprint, sizeof(slot->thumbprint));
	slot->purpose = (unsigned char)purpose;
	slot->flags = (unsigned char)flags;
	slot->generation = gen;
	slot->expires = expires;
	slot->v = *v_r;
	*expires_r = expires;
	return 0;
}

int pki_cert_verify(struct pki *pki, const struct pki_cert *c, enum pki_purpose purpose,
	int64_t at, unsigned flags, struct pki_verdict *v_r, struct sg_error *err)
{
	int64_t gen = 0, expires;

	if (at == 0 && (flags & PKI_VERIFY_NO_CACHE) == 0) {
		if (pki_generation(pki, &gen, err) < 0)
			return -1;
		return verify_gen(pki, c, purpose, flags, gen, v_r, &expires, err);
	}
	return verify_uncached(pki, c->x509, purpose, at ? at : sg_now(), flags, v_r,
		&expires, err);
}

int pki_verify_thumb_gen(struct pki *pki, const char *thumbprint, enum pki_purpose purpose,
	unsigned flags, int64_t gen, struct pki_verdict *v_r, int64_t *expires_r,
	struct sg_error *err)
{
	const struct pki_cache_slot *hit;
	struct pki_cert *c = NULL;
	int64_t now = sg_now();
	int rc;

	*expires_r = now;   /* NO_CACHE: holds for no later call */
	if ((flags & PKI_VERIFY_NO_CACHE) == 0 && strlen(thumbprint) == PKI_THUMBPRINT_LEN) {
		hit = cache_get(pki, thumbprint, purpose, flags, gen, now);
		if (hit != NULL) {
			pki->cache_hits++;
			*v_r = hit->v;
			*expires_r = hit->expires;
			return 1;
		}
	}
	rc = pki_cert_get(pki, thumbprint, &c, err);
	if (rc <= 0) {
		*expires_r = INT64_MAX;   /* an absent certificate: until the store changes */
		return rc;
	}
	if ((flags & PKI_VERIFY_NO_CACHE) != 0)
		rc = pki_cert_verify(pki, c, purpose, 0, flags, v_r, err) < 0 ? -1 : 1;
	else
		rc = verify_gen(pki, c, purpose, flags, gen, v_r, expires_r, err) < 0 ? -1 : 1;
	pki_cert_free(&c);
	return rc;
}

int pki_verify_thumb(struct pki *pki, const char *thumbprint, enum pki_purpose purpose,
	unsigned flags, struct pki_verdict *v_r, struct sg_error *err)
{
	int64_t gen = 0, expires;

	if ((flags & PKI_VERIFY_NO_CACHE) == 0 && pki_generation(pki, &gen, err) < 0)
		return -1;
	return pki_verify_thumb_gen(pki, thumbprint, purpose, flags, gen, v_r, &expires, err);
}
