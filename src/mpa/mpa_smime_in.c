/*
 * mpa_smime_in.c - the incoming S/MIME method "decrypt" for internal
 * recipients (F-FLOW-8, F-SMIME-3/4/5/6): remove every X-Sealgate-Info-*
 * field the message arrived with (they must not be spoofable; other
 * X-Sealgate-* fields are the force triggers, whose removal is the policy's
 * rule F-POL-8, and the own-mail marker, mpa_marker.c), unwrap the S/MIME
 * layers with smime_open - decrypting with a key from the store (non-strict:
 * any stored key named by a recipient info; strict: only keys allowed by
 * rules a/b/c of F-SMIME-3, otherwise the message stays encrypted) and
 * verifying every signer against the roots, CRLs and CTL (pki_cert_verify,
 * purpose sign) - collect the certificates of signatures into the store
 * and the CRLs they carry into the CRL store (only those signed by a valid
 * issuer, before the signers are checked: mpa_crl_cb), remove the signature
 * when asked, and write the X-Sealgate-Info-* fields (one set per layer)
 * and, with add_security_info, the subject tags.
 *
 * Called by the method dispatch (mpa_method.c) in an MPA worker thread.
 * Private keys stay behind pki_key.h (pki_key_cms_decrypt).
 *
 * Nothing here makes a message weaker: a message that cannot be decrypted or
 * parsed is delivered as it arrived (minus the spoofed fields).
 */
#include "mpa_smime_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#define MPA_INFO_PREFIX "X-Sealgate-Info-"
/* candidate keys tried per recipient info; certificates collected per layer;
 * recipients listed in the result fields */
#define MPA_KEYS_PER_RID 16
#define MPA_COLLECT_MAX 64
#define MPA_INFO_RCPTS_MAX 100

/* --------------------------------------------------------- decryption */

struct mpa_dec {
	struct mpa_ctx *ctx;
	struct pki_keys *keys;          /* opened on first need */
	const struct policy_decision *d;
	bool is_strict;
	struct sg_error keys_err;       /* why keys could not be opened */
	bool keys_failed;
};

struct mpa_cand {
	char thumbs[MPA_KEYS_PER_RID][PKI_THUMBPRINT_LEN + 1];
	size_t n;
	const struct smime_rid *rid;
};

static int mpa_cand_cb(struct pki_cert *c, void *arg, struct sg_error *err)
{
	struct mpa_cand *k = arg;

	(void)err;
	if (smime_rid_match(k->rid, c->x509) != 1)
		return 0;
	sg_strlcpy(k->thumbs[k->n++], c->thumbprint, sizeof(k->thumbs[0]));
	return k->n == MPA_KEYS_PER_RID ? 1 : 0;
}

/* mpa_rid_keys - stored certificates with a key that rid names */
static int mpa_rid_keys(struct pki *pki, const struct smime_rid *rid, struct mpa_cand *k,
	struct sg_error *err)
{
	struct pki_cert_query q = PKI_CERT_QUERY_INIT;
	char serial[256];

	k->n = 0;
	k->rid = rid;
	if (rid->kind == SMIME_RID_OTHER)
		return 0;
	q.has_key = 1;
	if (smime_rid_serial_hex(rid, serial, sizeof(serial)) == 0)
		q.serial = serial;
	else
		q.limit = PKI_SELECT_MAX;   /* SKI: among the certificates with a key */
	return pki_cert_search(pki, &q, mpa_cand_cb, k, err);
}

/* mpa_sel_has - is thumb among owner's manual encryption or signing
 * selections? 1 / 0 / -1 */
static int mpa_sel_has(struct pki *pki, const struct pki_owner *owner, const char *thumb,
	struct sg_error *err)
{
	struct pki_selection sel = {0};
	size_t i;
	int found = 0;

	if (pki_select_list(pki, owner, 0, &sel, err) < 0)
		return -1;
	for (i = 0; i < sel.n; i++)
		if (sel.v[i].kind != PKI_SEL_ADDITIONAL &&
		    strcmp(sel.v[i].thumbprint, thumb) == 0)
			found = 1;
	pki_selection_free(&sel);
	return found;
}

/*
 * mpa_strict_allows - F-SMIME-3 strict mode: the certificate of the key must
 * be valid (trusted, not revoked, usable for encryption) and (a) carry the
 * recipient's address, or (b) be selected for the recipient, or (c) be
 * selected for the recipient's domain (or the wildcard domain that
 * applies). 1 allowed, 0 not, -1 error.
 */
static int mpa_strict_allows(struct mpa_dec *dc, const char *thumb, struct sg_error *err)
{
	struct pki *pki = dc->ctx->mpa->pki;
	struct pki_cert *c = NULL;
	struct pki_verdict v;
	struct mpa_chain chain;
	unsigned vflags = 0;
	size_t i;
	int rc;

	rc = pki_cert_get(pki, thumb, &c, err);
	if (rc <= 0)
		return rc;
	if (policy_props_is_true(dc->d->props, POLICY_P_CRL_REQUIRED))
		vflags |= PKI_VERIFY_CRL_REQUIRED;
	rc = -1;
	if (pki_cert_verify(pki, c, PKI_PURPOSE_ENCRYPT, 0, vflags, &v, err) < 0)
		goto out;
	rc = 0;
	if (!v.is_valid)
		goto out;
	for (i = 0; i < c->n_emails; i++)
		if (strcasecmp(c->emails[i], dc->d->recipient) == 0) {
			rc = 1;   /* (a) */
			goto out;
		}
	rc = -1;
	if (mpa_chain_of(dc->d->props, &chain, err) < 0)
		goto out;
	rc = 0;
	for (i = 0; i < chain.n && rc == 0; i++) {
		if (chain.v[i].kind == PKI_OWNER_GLOBAL)
			continue;   /* (b) user, (c) domain / wildcard; never global */
		rc = mpa_sel_has(pki, &chain.v[i], thumb, err);
	}
out:
	pki_cert_free(&c);
	return rc;
}

/* mpa_decrypt_cb - smime_decrypt_fn over the key store */
static int mpa_decrypt_cb(void *arg, CMS_ContentInfo *cms, const struct smime_rid *rids,
	size_t n, BIO *out, size_t *used_r, struct sg_error *err)
{
	struct mpa_dec *dc = arg;
	struct pki *pki = dc->ctx->mpa->pki;
	struct mpa_cand k;
	struct sg_error last = {0};
	bool failed = false;
	size_t i, j;
	int rc;

	for (i = 0; i < n; i++) {
		if (mpa_rid_keys(pki, &rids[i], &k, err) < 0)
			return -1;
		for (j = 0; j < k.n; j++) {
			if (dc->is_strict) {
				rc = mpa_strict_allows(dc, k.thumbs[j], err);
				if (rc < 0)
					return -1;
				if (rc == 0)
					continue;
			}
			if (dc->keys == NULL && !dc->keys_failed) {
				dc->keys = mpa_keys_open(dc->ctx, &dc->keys_err);
				dc->keys_failed = dc->keys == NULL;
			}
			if (dc->keys == NULL) {
				*err = dc->keys_err;
				return mpa_is_temporary(err) ? -1 : 0;
			}
			(void)BIO_reset(out);
			if (pki_key_cms_decrypt(dc->keys, k.thumbs[j], cms, out, err) == 0) {
				*used_r = i;
				return 1;
			}
			if (mpa_is_temporary(err))
				return -1;
			last = *err;
			failed = err->code != SG_E_NOTFOUND;
		}
	}
	if (failed) {
		*err = last;
		return -1;
	}
	return 0;
}

/* ----------------------------------------------------------- trust */

struct mpa_trust {
	struct mpa_ctx *ctx;
	unsigned vflags;
};

/* mpa_collect - certificates of a signature into the store (F-SMIME-4);
 * duplicates are fine. 0 / -1 (store error). */
static int mpa_collect(struct pki *pki, STACK_OF(X509) *certs, struct sg_error *err)
{
	int i, n = certs != NULL ? sk_X509_num(certs) : 0;

	for (i = 0; i < n && i < MPA_COLLECT_MAX; i++) {
		/* (an unparsable one: nothing to collect) */
		if (pki_x509_collect(pki, sk_X509_value(certs, i), err) < 0 &&
		    mpa_is_temporary(err))
			return -1;
	}
	return 0;
}

/* mpa_trust_cb - smime_trust_fn: path validation through the store, the
 * message's certificates collected first so that its intermediates count */
static int mpa_trust_cb(void *arg, X509 *signer, STACK_OF(X509) *certs, int64_t at,
	char *info, size_t infolen, struct sg_error *err)
{
	struct mpa_trust *t = arg;
	struct pki *pki = t->ctx->mpa->pki;
	struct pki_cert *c;
	struct pki_verdict v;
	int64_t now = (int64_t)time(NULL);

	if (mpa_collect(pki, certs, err) < 0)
		return -1;
	c = pki_cert_from_x509(signer, err);
	if (c == NULL)
		return -1;
	/* at the signing time when it is plausible, else now */
	if (pki_cert_verify(pki, c, PKI_PURPOSE_SIGN, at > 0 && at <= now ? at : 0, t->vflags,
		&v, err) < 0) {
		pki_cert_free(&c);
		return -1;
	}
	pki_cert_free(&c);
	if (v.is_valid)
		return 1;
	sg_strlcpy(info, v.reason, infolen);
	return 0;
}

/*
 * mpa_crl_cb - smime_crl_fn (F-SMIME-4): a CRL carried in a signature goes
 * into the CRL store through the import of `sealgate crl import`, but only
 * when its signature verifies with an issuer certificate that is valid now
 * (stored, or carried in the same signature: collected first) - a CRL from
 * hostile input must not replace the issuer's real one. A CRL not newer
 * than the stored one keeps the stored one (the import's rule). Refused
 * CRLs are logged with the mail ID and skipped; only a temporary (store)
 * error fails the message (deferred).
 */
static int mpa_crl_cb(void *arg, X509_CRL *crl, size_t idx, STACK_OF(X509) *certs,
	struct sg_error *err)
{
	struct mpa_trust *t = arg;
	struct pki *pki = t->ctx->mpa->pki;
	struct pki_crl_info info;
	struct sg_error e;
	unsigned char *der = NULL;
	char src[64], esc[600];
	int len, rc;

	if (idx == 0 && mpa_collect(pki, certs, err) < 0)
		return -1;   /* once per layer: the same certificates for each CRL */
	len = i2d_X509_CRL(crl, &der);
	if (len <= 0) {
		ERR_clear_error();
		sg_log_mail(SG_LOG_WARN, t->ctx->id, "a CRL in the signature cannot be "
			"encoded: not imported");
		return 0;
	}
	snprintf(src, sizeof(src), "signature of %s", t->ctx->id);
	rc = pki_crl_import_ex(pki, der, (size_t)len, src, PKI_CRL_IMPORT_TRUSTED_ISSUER,
		&info, &e);
	OPENSSL_free(der);
	if (rc < 0 && mpa_is_temporary(&e)) {
		*err = e;
		return -1;
	}
	if (rc < 0) {
		/* an issuer we do not know is common (a CA not in the roots);
		 * a bad signature or an invalid issuer is worth a warning */
		sg_log_esc(esc, sizeof(esc), e.msg, strlen(e.msg));
		sg_log_mail(e.code == SG_E_NOTFOUND ? SG_LOG_INFO : SG_LOG_WARN, t->ctx->id,
			"CRL in the signature not imported: %s", esc);
		return 0;
	}
	sg_log_esc(esc, sizeof(esc), info.issuer, strlen(info.issuer));
	if (rc == PKI_CRL_ADDED)
		sg_log_mail(SG_LOG_INFO, t->ctx->id, "CRL of %s from the signature added to "
			"the CRL store (%lld entries)", esc, (long long)info.n_entries);
	else
		sg_log_mail(SG_LOG_INFO, t->ctx->id, "CRL of %s from the signature is not newer "
			"than the stored one: kept the stored one", esc);
	return 0;
}

/* ------------------------------------------------------- result fields */

/* mpa_clean - a value for a header field: control characters become spaces */
static void mpa_clean(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
}

static int mpa_info(struct mime_msg *m, const char *name, long idx, size_t level,
	const char *value, struct sg_error *err)
{
	char field[96];
	char *v = sg_xstrdup(value);
	int rc;

	if (idx >= 0)
		snprintf(field, sizeof(field), "X-Sealgate-Info-%s-%ld-%zu", name, idx, level);
	else
		snprintf(field, sizeof(field), "X-Sealgate-Info-%s-%zu", name, level);
	mpa_clean(v);
	rc = mime_msg_header_append(m, field, v[0] != '\0' ? v : "-", err);
	free(v);
	return rc;
}

/* mpa_signer_id - "issuer=<RFC 2253>, serial=<hex>" of x into out */
static void mpa_signer_id(X509 *x, char *out, size_t outsz)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *serial = NULL, *p = NULL, *s;
	BIGNUM *bn = NULL;
	long n;

	out[0] = '\0';
	if (b == NULL)
		return;
	(void)X509_NAME_print_ex(b, X509_get_issuer_name(x), 0, XN_FLAG_RFC2253 &
		~ASN1_STRFLGS_ESC_MSB);
	bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	serial = bn != NULL ? BN_bn2hex(bn) : NULL;
	for (p = serial; p != NULL && *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'F')
			*p = (char)(*p - 'A' + 'a');   /* as pki_cert.serial */
	s = serial;
	while (s != NULL && s[0] == '0' && s[1] != '\0')
		s++;   /* BN_bn2hex pads to whole bytes */
	p = NULL;
	n = BIO_get_mem_data(b, &p);
	snprintf(out, outsz, "issuer=%.*s, serial=%s", (int)(n > 0 ? n : 0), p != NULL ? p : "",
		s != NULL ? s : "?");
	OPENSSL_free(serial);
	BN_free(bn);
	BIO_free(b);
}

struct mpa_verdict {
	bool is_decrypted;      /* some layer was decrypted */
	bool is_signed;
	bool is_all_valid;      /* every signer valid and trusted */
	bool is_mismatch;       /* valid, but the From address is not the signer's */
	char signer_email[POLICY_ADDR_MAX];
};

/* mpa_signer_fields - the fields of signer j of layer level */
static int mpa_signer_fields(struct mpa_ctx *ctx, struct mime_msg *m,
	const struct smime_signer_info *s, long j, size_t level, struct mpa_verdict *vd,
	struct sg_error *err)
{
	struct sg_buf emails;
	struct pki_cert *c = NULL;
	char id[1024];
	bool valid = s->status == SMIME_SIG_VALID, mismatch = true;
	size_t k;
	int rc = -1;

	sg_buf_init(&emails, 4096);
	if (s->cert != NULL) {
		struct sg_error e;

		mpa_signer_id(s->cert, id, sizeof(id));
		c = pki_cert_from_x509(s->cert, &e);
	} else {
		sg_strlcpy(id, "unknown", sizeof(id));
	}
	for (k = 0; c != NULL && k < c->n_emails; k++) {
		(void)sg_buf_printf(&emails, NULL, "%s%s", k > 0 ? ", " : "", c->emails[k]);
		if (strcasecmp(c->emails[k], ctx->originator) == 0)
			mismatch = false;
	}
	if (mpa_info(m, "Signer-ID", j, level, id, err) < 0 ||
	    mpa_info(m, "Signer-Email", j, level, emails.data != NULL ? emails.data : "", err) < 0
	    || mpa_info(m, "Signer-Verified", j, level, valid ? "True" : "False", err) < 0 ||
	    (!valid && mpa_info(m, "Signer-Verification-Info", j, level, s->reason[0] != '\0' ?
		s->reason : smime_sig_status_name(s->status), err) < 0) ||
	    mpa_info(m, "Signer-Trusted", j, level, s->trusted == 1 ? "True" : "False", err) < 0
	    || (s->trusted != 1 && mpa_info(m, "Signer-Trusted-Info", j, level,
		s->trusted < 0 ? "not checked" : s->trust_info, err) < 0) ||
	    mpa_info(m, "Signer-Mismatch", j, level, mismatch ? "True" : "False", err) < 0)
		goto out;
	if (!valid || s->trusted != 1)
		vd->is_all_valid = false;
	else if (mismatch) {
		vd->is_mismatch = true;
		if (vd->signer_email[0] == '\0' && c != NULL && c->n_emails > 0)
			sg_strlcpy(vd->signer_email, c->emails[0], sizeof(vd->signer_email));
	}
	rc = 0;
out:
	pki_cert_free(&c);
	sg_buf_deinit(&emails);
	return rc;
}

/* mpa_layer_fields - the X-Sealgate-Info-* fields of layer level */
static int mpa_layer_fields(struct mpa_ctx *ctx, struct mime_msg *m,
	const struct smime_layer *l, size_t level, struct mpa_verdict *vd, struct sg_error *err)
{
	size_t i;

	switch (l->kind) {
	case SMIME_LAYER_ENVELOPED:
	case SMIME_LAYER_AUTH_ENVELOPED:
		if (mpa_info(m, "Encrypted", -1, level, "True", err) < 0 ||
		    mpa_info(m, "Encryption-Algorithm", -1, level, l->cipher[0] != '\0' ?
			l->cipher : "unknown", err) < 0)
			return -1;
		for (i = 0; i < l->n_recipients && i < MPA_INFO_RCPTS_MAX; i++)
			if (mpa_info(m, "Encryption-Recipient", (long)i, level, l->recipients[i],
				err) < 0)
				return -1;
		if (!l->is_decrypted)
			return mpa_info(m, "Decryption-Key-Not-Found", -1, level, "True", err);
		vd->is_decrypted = true;
		return 0;
	case SMIME_LAYER_SIGNED_CLEAR:
	case SMIME_LAYER_SIGNED_OPAQUE:
		vd->is_signed = true;
		if (mpa_info(m, "Signed", -1, level, "True", err) < 0)
			return -1;
		for (i = 0; i < l->n_signers; i++)
			if (mpa_signer_fields(ctx, m, &l->signers[i], (long)i, level, vd, err) < 0)
				return -1;
		if (l->n_signers == 0)
			vd->is_all_valid = false;
		return 0;
	}
	return 0;
}

/* mpa_subject_tags - add_security_info (guide §4.3.1): the tags appended to
 * the subject */
static int mpa_subject_tags(const struct policy_decision *d, struct mime_msg *m,
	const struct mpa_verdict *vd, struct sg_error *err)
{
	const struct policy_props *pp = d->props;
	const char *subj = mime_msg_header_get(m, "Subject");
	struct sg_buf b;
	const char *tag;
	int rc;

	sg_buf_init(&b, 8192);
	(void)sg_buf_append_str(&b, subj != NULL ? subj : "", NULL);
	if (vd->is_decrypted && (tag = policy_props_get(pp,
		POLICY_P_SECURITY_INFO_DECRYPTED_TAG, NULL)) != NULL && tag[0] != '\0')
		(void)sg_buf_printf(&b, NULL, " %s", tag);
	if (vd->is_signed && !vd->is_all_valid) {
		tag = policy_props_get(pp, POLICY_P_SECURITY_INFO_INVALID_SIGNATURE_TAG, NULL);
		if (tag != NULL && tag[0] != '\0')
			(void)sg_buf_printf(&b, NULL, " %s", tag);
	} else if (vd->is_signed && vd->is_mismatch) {
		tag = policy_props_get(pp, POLICY_P_SECURITY_INFO_SIGNED_BY_TAG, NULL);
		if (tag != NULL && tag[0] != '\0') {
			const char *pct = strstr(tag, "%s");

			(void)sg_buf_append_str(&b, " ", NULL);
			if (pct != NULL) {
				(void)sg_buf_append(&b, tag, (size_t)(pct - tag), NULL);
				(void)sg_buf_append_str(&b, vd->signer_email, NULL);
				(void)sg_buf_append_str(&b, pct + 2, NULL);
			} else {
				(void)sg_buf_append_str(&b, tag, NULL);
			}
		}
	} else if (vd->is_signed) {
		tag = policy_props_get(pp, POLICY_P_SECURITY_INFO_SIGNED_TAG, NULL);
		if (tag != NULL && tag[0] != '\0')
			(void)sg_buf_printf(&b, NULL, " %s", tag);
	}
	if (b.data == NULL || (subj != NULL && strcmp(b.data, subj) == 0)) {
		sg_buf_deinit(&b);
		return 0;
	}
	{
		char *p;

		for (p = b.data; *p != '\0'; p++)
			if (*p == '\r' || *p == '\n')
				*p = ' ';
	}
	rc = mime_msg_header_set(m, "Subject", b.data, err);
	sg_buf_deinit(&b);
	return rc;
}

/* ------------------------------------------------------------- method */

/* mpa_has_info_fields - does m carry any X-Sealgate-Info-* field? */
static bool mpa_has_info_fields(struct mime_msg *m)
{
	GMimeHeaderList *hl = g_mime_object_get_header_list(GMIME_OBJECT(
		mime_msg_get0_gmime(m)));
	int i, n = hl != NULL ? g_mime_header_list_get_count(hl) : 0;

	for (i = 0; i < n; i++) {
		const char *name = g_mime_header_get_name(g_mime_header_list_get_header_at(hl, i));

		if (name != NULL && strncasecmp(name, MPA_INFO_PREFIX,
			sizeof(MPA_INFO_PREFIX) - 1) == 0)
			return true;
	}
	return false;
}

/* mpa_strip_only - a message that is not S/MIME (or stays as it is): only
 * the spoofed fields go */
static enum mpa_result mpa_strip_only(struct mpa_ctx *ctx, struct mpa_group *g,
	struct sg_error *err)
{
	struct mime_msg *m = g->msg != NULL ? g->msg : ctx->msg;

	if (!mpa_has_info_fields(m))
		return MPA_NEXT;
	if (mime_msg_is_opaque(m)) {
		sg_error_set(err, SG_E_LIMIT, "the message has too many MIME parts to remove "
			"the spoofed X-Sealgate fields");
		return MPA_ERROR;
	}
	if (g->msg == NULL) {
		g->msg = mime_msg_reparse(ctx->msg, err);
		if (g->msg == NULL)
			return mpa_result_of_error(err);
	}
	(void)mime_msg_header_remove_prefix(g->msg, MPA_INFO_PREFIX);
	g->done = "strip-info";
	return MPA_NEXT;
}

enum mpa_result mpa_smime_in(struct mpa_ctx *ctx, struct mpa_group *g,
	struct sg_error *err)
{
	const struct policy_decision *d = g->dec;
	struct mime_msg *m = g->msg != NULL ? g->msg : ctx->msg, *nm = NULL;
	struct mpa_dec dc = {ctx, NULL, d, (d->flags & POLICY_D_DECRYPT_STRICT) != 0,
		{0}, false};
	struct mpa_trust tr = {ctx, 0};
	struct smime_open_opts opts = {0};
	struct smime_result res = {0};
	struct mpa_verdict vd = {false, false, true, false, ""};
	enum mpa_result r = MPA_ERROR;
	size_t max = d->smime_max_size > 0 && d->smime_max_size < SIZE_MAX / 2 ?
		(size_t)d->smime_max_size : SMIME_DEFAULT_MAX;
	uint64_t in_len = 0, out_len = 0;
	int in_fd = -1, out_fd = -1;
	size_t i;
	char esc[256];

	if (mpa_msg_ct_kind(m) == MPA_CT_OTHER)
		return mpa_strip_only(ctx, g, err);
	/* the message, the layers and the result go through anonymous
	 * temporary files (smime_open_fd), not memory */
	in_fd = mpa_msg_to_fd(ctx->mpa, m, max, &in_len, err);
	if (in_fd < 0) {
		if (err->code != SG_E_LIMIT) {
			r = mpa_result_of_error(err);
			goto out;
		}
		sg_log_mail(SG_LOG_INFO, ctx->id, "S/MIME message larger than the S/MIME "
			"maximum size: delivered as received");
		r = mpa_strip_only(ctx, g, err);
		goto out;
	}
	if (policy_props_is_true(d->props, POLICY_P_CRL_REQUIRED))
		tr.vflags |= PKI_VERIFY_CRL_REQUIRED;
	opts.decrypt = mpa_decrypt_cb;
	opts.decrypt_arg = &dc;
	opts.trust = mpa_trust_cb;
	opts.trust_arg = &tr;
	opts.crl = mpa_crl_cb;
	opts.crl_arg = &tr;
	if (d->flags & POLICY_D_REMOVE_SIGNATURE)
		opts.flags |= SMIME_OPEN_REMOVE_SIGNATURE;
	opts.max_output = in_len + (1u << 20);
	out_fd = mpa_tmp_fd(err);
	if (out_fd < 0) {
		r = mpa_result_of_error(err);
		goto out;
	}
	if (smime_open_fd(in_fd, in_len, &opts, &res, out_fd, &out_len, err) < 0) {
		if (mpa_is_temporary(err)) {
			r = MPA_DEFER;
			goto out;
		}
		sg_log_esc(esc, sizeof(esc), err->msg, strlen(err->msg));
		sg_log_mail(SG_LOG_WARN, ctx->id, "S/MIME not processed for %zu recipient(s): "
			"%s: delivered as received", g->nrcpts, esc);
		r = mpa_strip_only(ctx, g, err);
		goto out;
	}
	mpa_scratch_put(ctx->mpa, &in_fd);
	for (i = 0; i < res.n_layers; i++)
		if (mpa_collect(ctx->mpa->pki, res.layers[i].certs, err) < 0) {
			r = MPA_DEFER;
			goto out;
		}
	nm = mime_msg_parse_fd(out_fd, 0, out_len, err);   /* holds its own dup */
	if (nm == NULL) {
		r = mpa_result_of_error(err);
		goto out;
	}
	(void)mime_msg_header_remove_prefix(nm, MPA_INFO_PREFIX);
	for (i = 0; i < res.n_layers; i++)
		if (mpa_layer_fields(ctx, nm, &res.layers[i], i, &vd, err) < 0)
			goto out;
	if ((d->flags & POLICY_D_ADD_SECURITY_INFO) &&
	    mpa_subject_tags(d, nm, &vd, err) < 0)
		goto out;
	mime_msg_free(&g->msg);
	g->msg = nm;
	nm = NULL;
	g->done = vd.is_decrypted ? "decrypt" : vd.is_signed ? "verify" :
		res.n_layers > 0 ? "smime-info" : "strip-info";
	sg_log_mail(SG_LOG_INFO, ctx->id, "S/MIME for %zu recipient(s): %zu layer(s), %s%s%s",
		g->nrcpts, res.n_layers, vd.is_decrypted ? "decrypted" : "not decrypted",
		vd.is_signed ? (vd.is_all_valid ? ", signature valid" :
		", signature INVALID") : "", dc.is_strict ? " (strict)" : "");
	r = MPA_NEXT;
out:
	mime_msg_free(&nm);
	dc.keys = NULL;   /* borrowed from the struct mpa */
	smime_result_deinit(&res);
	mpa_scratch_put(ctx->mpa, &in_fd);
	if (out_fd >= 0)
		close(out_fd);
	return r;
}
