/*
 * mpa_smime.c - the outgoing S/MIME method (F-SMIME-0/1/2/6): for a group of
 * external recipients whose decision is "smime", sign the message with the
 * originator's signing certificate when the decision says so, then encrypt
 * it to every selected, valid encryption certificate of every recipient of
 * the group plus the additional certificates. Also signing alone for method
 * "plain" (POLICY_D_SIGN_OUTPUT), and the helpers the incoming side
 * (mpa_smime_in.c) shares.
 *
 * Called by the method dispatch (mpa_method.c) in an MPA worker thread with
 * that worker's PKI context and policy resolver. Private keys stay behind
 * pki_key.h: signing goes through pki_key_sign as smime's raw-signature
 * callback.
 *
 * Invariants: fail closed - a group whose output must be encrypted gets the
 * encrypted message or nothing (MPA_REJECT, the encryption-failed
 * notification); a signing failure does not stop encryption (F-SMIME-0).
 * Privacy: one output's recipient infos name only the certificates of that
 * group's recipients (+ additional certificates); groups are never merged.
 * Already encrypted mail (S/MIME enveloped, PGP/MIME) passes unchanged.
 * What is signed/encrypted is the message's original entity (smime.h).
 */
#include "mpa_smime_int.h"

#include "ca/ca.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

/* Recipient certificates of one output at most (union over the group). */
#define MPA_SMIME_MAX_CERTS 1000
/* Room for base64, the signature and the CMS structure over the input. */
#define MPA_SMIME_OUT_MAX(n) ((n) / 3 * 4 + (n) / 38 + (1u << 20))

/* ----------------------------------------------------------- helpers */

int mpa_chain_of(const struct policy_props *pp, struct mpa_chain *c, struct sg_error *err)
{
	size_t i, n = 0;

	c->n = 0;
	if (policy_owner_chain(pp, c->owners, &n) < 0) {
		sg_error_set(err, SG_E_INTERNAL, "policy: no owner chain");
		return -1;
	}
	for (i = 0; i < n; i++) {
		const char *o = c->owners[i];

		if (strncmp(o, "user:", 5) == 0)
			c->v[c->n++] = (struct pki_owner){PKI_OWNER_USER, o + 5};
		else if (strncmp(o, "domain:", 7) == 0)
			c->v[c->n++] = (struct pki_owner){PKI_OWNER_DOMAIN, o + 7};
		else if (strncmp(o, "wildcard:", 9) == 0)
			c->v[c->n++] = (struct pki_owner){PKI_OWNER_DOMAIN, o + 9};
		else if (strcmp(o, "global") == 0)
			c->v[c->n++] = (struct pki_owner){PKI_OWNER_GLOBAL, ""};
	}
	return 0;
}

const struct policy_decision *mpa_rcpt_dec(const struct mpa_ctx *ctx, size_t i)
{
	return &ctx->results[i / POLICY_RCPT_MAX]->rcpt[i % POLICY_RCPT_MAX];
}

bool mpa_is_temporary(const struct sg_error *err)
{
	return sg_errc_class(err->code) == SG_EC_TEMPORARY;
}

int mpa_scratch_get(struct mpa *mpa, struct sg_error *err)
{
	int fd;

	while (mpa->nscratch > 0) {
		fd = mpa->scratch[--mpa->nscratch];
		if (lseek(fd, 0, SEEK_SET) == 0)
			return fd;
		close(fd);
	}
	return mpa_tmp_fd(err);
}

void mpa_scratch_put(struct mpa *mpa, int *fdp)
{
	int fd = *fdp;
	off_t used;

	if (fd < 0)
		return;
	*fdp = -1;
	used = lseek(fd, 0, SEEK_CUR);
	if (used < 0 || (uint64_t)used > MPA_SCRATCH_KEEP || mpa->nscratch >= MPA_SCRATCH_FDS ||
	    ftruncate(fd, used) < 0) {
		close(fd);
		return;
	}
	mpa->scratch[mpa->nscratch++] = fd;
}

int mpa_msg_to_fd(struct mpa *mpa, struct mime_msg *m, uint64_t max, uint64_t *len_r,
	struct sg_error *err)
{
	int fd = mpa_scratch_get(mpa, err);

	if (fd < 0)
		return -1;
	if (mime_msg_write_fd(m, fd, max, len_r, err) < 0) {
		mpa_scratch_put(mpa, &fd);
		return -1;
	}
	return fd;
}

int mpa_tmp_fd(struct sg_error *err)
{
	int fd = memfd_create("sealgate-smime", MFD_CLOEXEC);

	if (fd < 0)
		sg_error_set_errno(err, SG_E_IO, errno, "memfd_create");
	return fd;
}

struct pki_keys *mpa_keys_open(struct mpa_ctx *ctx, struct sg_error *err)
{
	const struct sg_config *cfg = ctx->mpa->conf.cfg;

	if (cfg == NULL || cfg->data_dir == NULL || cfg->data_dir[0] == '\0') {
		sg_error_set(err, SG_E_CONFIG, "no data directory: private keys unavailable");
		return NULL;
	}
	if (ctx->mpa->keys == NULL)
		ctx->mpa->keys = pki_keys_open(ctx->mpa->pki, cfg->data_dir, err);
	return ctx->mpa->keys;
}

enum mpa_ct_kind mpa_msg_ct_kind(struct mime_msg *m)
{
	GMimeObject *top = g_mime_message_get_mime_part(mime_msg_get0_gmime(m));
	const char *raw = mime_msg_header_get_raw(m, "Content-Type");
	enum mpa_ct_kind k = MPA_CT_OTHER;
	GMimeContentType *ct;
	const char *p;

	/* GMime keeps the Content-* fields with the top-level part; the
	 * message's own list has them only when there is no part */
	if (top != NULL)
		ct = g_object_ref(g_mime_object_get_content_type(top));
	else if (raw != NULL)
		ct = g_mime_content_type_parse(NULL, raw);
	else
		return MPA_CT_OTHER;
	if (ct == NULL)
		return MPA_CT_OTHER;
	if (g_mime_content_type_is_type(ct, "application", "pkcs7-mime") ||
	    g_mime_content_type_is_type(ct, "application", "x-pkcs7-mime")) {
		p = g_mime_content_type_get_parameter(ct, "smime-type");
		k = p != NULL && (strcasecmp(p, "enveloped-data") == 0 ||
			strcasecmp(p, "authEnveloped-data") == 0) ? MPA_CT_ENCRYPTED : MPA_CT_SMIME;
	} else if (g_mime_content_type_is_type(ct, "multipart", "encrypted")) {
		p = g_mime_content_type_get_parameter(ct, "protocol");
		if (p != NULL && strcasecmp(p, "application/pgp-encrypted") == 0)
			k = MPA_CT_ENCRYPTED;
	} else if (g_mime_content_type_is_type(ct, "multipart", "signed")) {
		p = g_mime_content_type_get_parameter(ct, "protocol");
		if (p != NULL && (strcasecmp(p, "application/pkcs7-signature") == 0 ||
			strcasecmp(p, "application/x-pkcs7-signature") == 0))
			k = MPA_CT_SMIME;
	}
	g_object_unref(ct);
	return k;
}

/* ------------------------------------------------------------- signing */

struct mpa_sign_arg {
	struct pki_keys *keys;
	const char *thumbprint;
};

/* mpa_sign_cb - smime_sign_fn over the key store */
static int mpa_sign_cb(void *arg, const char *md, const void *tbs, size_t len,
	struct sg_buf *sig, struct sg_error *err)
{
	struct mpa_sign_arg *a = arg;

	return pki_key_sign(a->keys, a->thumbprint, md, tbs, len, sig, err);
}

/*
 * mpa_smime_auto_request - F-CA-5 (smime_auto_request_certificate): no usable
 * signing certificate for the originator, so ask the built-in CA's default
 * handler for one. 1 issued now (key and certificate stored), 0 queued,
 * pending or impossible (logged; the message goes on unsigned, as policy
 * says for "sign if possible").
 */
static int mpa_smime_auto_request(struct mpa_ctx *ctx, const char *email, const char *esc)
{
	struct sg_error e;
	struct pki_keys *keys = mpa_keys_open(ctx, &e);
	struct ca *ca = keys != NULL ? ca_open(ctx->mpa->pki, keys, &e) : NULL;
	struct ca_issued issued;
	int r = -1;

	if (ca != NULL)
		r = ca_auto_request(ca, email, &issued, &e);
	if (r > 0)
		sg_log_mail(SG_LOG_INFO, ctx->id, "signing certificate issued for <%s> by CA "
			"%s (auto request)", esc, issued.ca_name);
	else if (r == 0)
		sg_log_mail(SG_LOG_INFO, ctx->id, "signing certificate for <%s> requested "
			"(auto request queued)", esc);
	else
		sg_log_mail(SG_LOG_WARN, ctx->id, "auto request of a signing certificate for "
			"<%s> failed: %s", esc, e.msg);
	ca_close(&ca);
	return r;
}

/*
 * mpa_smime_sign - sign bytes [0, len) of in_fd for the group's decision with
 * the originator's signing certificate into out_fd (*out_len_r bytes): clear
 * (multipart/signed) or, when the sender's smime_signing_mode is opaque,
 * application/pkcs7-mime signed-data. signed_r (may be NULL) gets what the
 * encryption of the signed message may skip (smime_sign_opts.signed_r).
 * 1 signed, 0 not signed (no usable certificate, no key, or signing failed:
 * logged; signing never stops the message), -1 temporary error (err set).
 */
static int mpa_smime_sign(struct mpa_ctx *ctx, const struct policy_decision *d,
	int in_fd, uint64_t len, int out_fd, uint64_t *out_len_r,
	struct smime_signed *signed_r, struct sg_error *err)
{
	const struct policy_result *res = ctx->results[0];
	const struct policy_props *sp = res->sender_props;
	struct pki *pki = ctx->mpa->pki;
	struct mpa_chain chain;
	struct pki_selected sel;
	X509 *cert = NULL;
	struct pki_keys *keys = NULL;
	STACK_OF(X509) *issuers = NULL;
	struct smime_sign_opts opts = {0};
	struct smime_signer signer;
	struct mpa_sign_arg arg;
	unsigned flags = 0, vflags = 0;
	struct sg_error e;
	char esc[POLICY_ADDR_MAX * 4];
	const char *mode;
	int rc = -1, found;

	if (res->originator[0] == '\0' || sp == NULL)
		return 0;
	sg_log_esc(esc, sizeof(esc), res->originator, strlen(res->originator));
	if (mpa_chain_of(sp, &chain, err) < 0)
		goto fail;
	if (policy_props_is_true(sp, POLICY_P_SMIME_AUTO_SELECT_CERTIFICATES))
		flags |= PKI_SELECT_AUTO;
	if (policy_props_is_true(sp, POLICY_P_SMIME_ALWAYS_USE_FRESHEST_SIGNING_CERTIFICATE))
		flags |= PKI_SELECT_FRESHEST;
	if (policy_props_is_true(sp, POLICY_P_CRL_REQUIRED))
		vflags |= PKI_VERIFY_CRL_REQUIRED;
	found = pki_select_signing(pki, res->originator, chain.v, chain.n, flags, vflags,
		&sel, err);
	if (found == 0 && policy_props_is_true(sp, POLICY_P_SMIME_AUTO_REQUEST_CERTIFICATE)) {
		/* F-CA-5: request one from the default handler; a built-in CA
		 * issues at once (select again), a queued request signs later. */
		if (mpa_smime_auto_request(ctx, res->originator, esc) > 0)
			found = pki_select_signing(pki, res->originator, chain.v, chain.n, flags,
				vflags, &sel, err);
	}
	if (found < 0)
		goto fail;
	if (found == 0) {
		sg_log_mail(SG_LOG_INFO, ctx->id, "not signed: no valid signing certificate "
			"with a key for <%s>", esc);
		return 0;
	}
	/* the certificate and its issuers (the chain sent with the signature),
	 * kept by the PKI context until the store changes */
	found = pki_cert_chain_get1(pki, sel.thumbprint, &cert, &issuers, err);
	if (found <= 0) {
		if (found == 0)
			sg_error_set(err, SG_E_NOTFOUND, "signing certificate vanished");
		goto fail;
	}
	keys = mpa_keys_open(ctx, err);
	if (keys == NULL)
		goto fail;
	arg = (struct mpa_sign_arg){keys, sel.thumbprint};
	signer = (struct smime_signer){cert, issuers, mpa_sign_cb, &arg};
	if (d->sign_alg != NULL && smime_digest_parse(d->sign_alg, &opts.digest) < 0)
		opts.digest = SMIME_DIGEST_SHA256;
	/* the mode is the sender's (SPEC §11: signing belongs to the sender) */
	mode = policy_props_get(sp, POLICY_P_SMIME_SIGNING_MODE, NULL);
	if (mode != NULL && strcmp(mode, "opaque") == 0)
		opts.flags |= SMIME_SIGN_OPAQUE;
	opts.max_output = MPA_SMIME_OUT_MAX(len);
	opts.signed_r = signed_r;
	if (smime_sign_fd(in_fd, len, &signer, &opts, out_fd, out_len_r, err) < 0)
		goto fail;
	rc = 1;
	goto out;
fail:
	if (mpa_is_temporary(err))
		goto out;   /* rc -1: retried later */
	e = *err;
	sg_log_mail(SG_LOG_WARN, ctx->id, "not signed for <%s>: %s", esc, e.msg);
	rc = 0;   /* (smime_sign_fd left out_fd as it was) */
out:
	if (issuers != NULL)
		sk_X509_pop_free(issuers, X509_free);
	X509_free(cert);
	return rc;
}

/* ---------------------------------------------------------- encryption */

struct mpa_certs {
	STACK_OF(X509) *sk;
	char (*thumbs)[PKI_THUMBPRINT_LEN + 1];
	size_t n;
};

static void mpa_certs_free(struct mpa_certs *c)
{
	if (c->sk != NULL)
		sk_X509_pop_free(c->sk, X509_free);
	free(c->thumbs);
	memset(c, 0, sizeof(*c));
}

/* mpa_certs_add - the certificates of sel into c, each thumbprint once */
static int mpa_certs_add(struct pki *pki, const struct pki_selection *sel, struct mpa_certs *c,
	struct sg_error *err)
{
	size_t i, k;

	for (i = 0; i < sel->n; i++) {
		X509 *x = NULL;
		int rc;

		if (!sel->v[i].is_usable)
			continue;
		for (k = 0; k < c->n; k++)
			if (strcmp(c->thumbs[k], sel->v[i].thumbprint) == 0)
				break;
		if (k < c->n)
			continue;
		if (c->n >= MPA_SMIME_MAX_CERTS) {
			sg_error_set(err, SG_E_LIMIT, "more than %d recipient certificates",
				MPA_SMIME_MAX_CERTS);
			return -1;
		}
		/* the decoded certificate only (no text fields) */
		rc = pki_cert_x509_get1(pki, sel->v[i].thumbprint, &x, err);
		if (rc < 0)
			return -1;
		if (rc == 0)
			continue;   /* deleted meanwhile */
		if (!sk_X509_push(c->sk, x)) {
			X509_free(x);
			sg_error_set(err, SG_E_NOMEM, "certificates");
			return -1;
		}
		c->thumbs = sg_xrealloc(c->thumbs, (c->n + 1) * sizeof(*c->thumbs));
		sg_strlcpy(c->thumbs[c->n++], sel->v[i].thumbprint, sizeof(c->thumbs[0]));
	}
	return 0;
}

/* mpa_group_certs - every usable encryption certificate of every recipient
 * of g, plus the additional certificates when the decision says so. */
static int mpa_group_certs(struct mpa_ctx *ctx, const struct mpa_group *g,
	struct mpa_certs *c, struct sg_error *err)
{
	struct pki *pki = ctx->mpa->pki;
	size_t i;

	c->sk = sk_X509_new_null();
	if (c->sk == NULL) {
		sg_error_set(err, SG_E_NOMEM, "certificates");
		return -1;
	}
	for (i = 0; i < g->nrcpts; i++) {
		const struct policy_decision *d = mpa_rcpt_dec(ctx, g->rcpts[i]);
		struct pki_selection sel = {0};
		struct mpa_chain chain;
		unsigned flags = 0, vflags = 0;
		int rc;

		if (mpa_chain_of(d->props, &chain, err) < 0)
			return -1;
		if (policy_props_is_true(d->props, POLICY_P_SMIME_AUTO_SELECT_CERTIFICATES))
			flags |= PKI_SELECT_AUTO;
		if (policy_props_is_true(d->props, POLICY_P_CRL_REQUIRED))
			vflags |= PKI_VERIFY_CRL_REQUIRED;
		if (pki_select_encryption(pki, d->recipient, chain.v, chain.n, flags, vflags,
			&sel, err) < 0) {
			sg_error_prefix(err, "certificates of %s: ", d->recipient);
			return -1;
		}
		rc = mpa_certs_add(pki, &sel, c, err);
		pki_selection_free(&sel);
		if (rc < 0)
			return -1;
		if (!(d->flags & POLICY_D_ADD_ADDITIONAL_CERTS))
			continue;
		if (pki_select_additional(pki, chain.v, chain.n, 0, vflags, &sel, err) < 0) {
			sg_error_prefix(err, "additional certificates: ");
			return -1;
		}
		rc = mpa_certs_add(pki, &sel, c, err);
		pki_selection_free(&sel);
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* mpa_add_users - "add user" (guide §4.2.4): a user object for every
 * recipient whose message was S/MIME encrypted. */
static int mpa_add_users(struct mpa_ctx *ctx, const struct mpa_group *g,
	struct sg_error *err)
{
	size_t i;

	for (i = 0; i < g->nrcpts; i++) {
		const struct policy_decision *d = mpa_rcpt_dec(ctx, g->rcpts[i]);

		if (!(d->flags & POLICY_D_ADD_USER))
			continue;
		if (policy_object_add(ctx->mpa->policy, POLICY_KIND_USER, d->recipient, err) < 0
			&& err->code != SG_E_EXISTS)
			return -1;
	}
	return 0;
}

/* mpa_set_output - g's output becomes the message in bytes [0, len) of fd
 * (the message holds its own dup of fd; it is only written out, so GMime
 * never parses it: mime_msg_open_fd) */
static int mpa_set_output(struct mpa_group *g, int fd, uint64_t len, const char *done,
	struct sg_error *err)
{
	struct mime_msg *m = mime_msg_open_fd(fd, 0, len, err);

	if (m == NULL)
		return -1;
	mime_msg_free(&g->msg);
	g->msg = m;
	g->done = done;
	return 0;
}

/* mpa_reject_failed - fail closed with the reason (log + notification) */
static enum mpa_result mpa_reject_failed(struct mpa_group *g, const char *what,
	const struct sg_error *e)
{
	char reason[sizeof(g->reason)];

	snprintf(reason, sizeof(reason), "S/MIME encryption failed: %s%s%s", what,
		e != NULL ? ": " : "", e != NULL ? e->msg : "");
	mpa_group_reject(g, MPA_ACT_ENCRYPT_FAILED, reason);
	return MPA_REJECT;
}

/* mpa_close - close *fdp if open */
static void mpa_close(int *fdp)
{
	if (*fdp >= 0)
		close(*fdp);
	*fdp = -1;
}

/*
 * mpa_smime_out - sign (when asked) and encrypt g's message. Every stage
 * streams between anonymous temporary files (the message, the signed
 * message, the encrypted one), so memory does not grow with the message
 * size; the two scratch files are kept for the next message
 * (mpa_scratch_get/put), the output file becomes the group's message as it
 * is (never parsed: it is only copied out). A signed message goes to the
 * encryption with what the signing knows of its shape (struct
 * smime_signed), so its header section is not parsed back.
 */
enum mpa_result mpa_smime_out(struct mpa_ctx *ctx, struct mpa_group *g,
	struct sg_error *err)
{
	const struct policy_decision *d = g->dec;
	struct mime_msg *m = g->msg != NULL ? g->msg : ctx->msg;
	struct smime_encrypt_opts opts = {0};
	struct smime_signed sgd = {0};
	struct mpa_certs certs = {0};
	enum mpa_result r = MPA_ERROR;
	size_t max = d->smime_max_size > 0 && d->smime_max_size < SIZE_MAX / 2 ?
		(size_t)d->smime_max_size : SMIME_DEFAULT_MAX;
	uint64_t in_len = 0, sig_len = 0, enc_len = 0, blen;
	int in_fd = -1, sig_fd = -1, enc_fd = -1, body_fd;
	int signed_ = 0;

	enum mpa_ct_kind kind = mpa_msg_ct_kind(m);

	if (kind == MPA_CT_ENCRYPTED) {
		/* F-SMIME-0: already encrypted end to end: passes unchanged */
		g->done = "already-encrypted";
		return MPA_NEXT;
	}
	in_fd = mpa_msg_to_fd(ctx->mpa, m, max, &in_len, err);
	if (in_fd < 0) {
		if (err->code == SG_E_LIMIT) {
			r = mpa_reject_failed(g, "the message is larger than the S/MIME maximum "
				"size", NULL);
			goto out;
		}
		r = mpa_result_of_error(err);
		goto out;
	}
	if (mpa_group_certs(ctx, g, &certs, err) < 0) {
		r = mpa_is_temporary(err) ? MPA_DEFER : mpa_reject_failed(g,
			"recipient certificates", err);
		goto out;
	}
	if (certs.n == 0) {
		r = mpa_reject_failed(g, "no valid encryption certificate for the recipient",
			NULL);
		goto out;
	}
	body_fd = in_fd;
	blen = in_len;
	if ((d->flags & POLICY_D_SIGN_OUTPUT) && kind == MPA_CT_OTHER) {
		/* (a message the client signed keeps its own signature) */
		sig_fd = mpa_scratch_get(ctx->mpa, err);
		if (sig_fd < 0) {
			r = mpa_result_of_error(err);
			goto out;
		}
		signed_ = mpa_smime_sign(ctx, d, in_fd, in_len, sig_fd, &sig_len, &sgd, err);
		if (signed_ < 0) {
			r = MPA_DEFER;
			goto out;
		}
		if (signed_ == 1) {
			body_fd = sig_fd;
			blen = sig_len;
			mpa_scratch_put(ctx->mpa, &in_fd);   /* (a large one's pages go back) */
		}
	}
	if (d->enc_alg != NULL && smime_cipher_parse(d->enc_alg, &opts.cipher) < 0) {
		sg_error_set(err, SG_E_CONFIG, "unknown S/MIME encryption algorithm %s",
			d->enc_alg);
		r = mpa_reject_failed(g, "configuration", err);
		goto out;
	}
	opts.kt = d->key_transport != NULL && strcmp(d->key_transport, "oaep") == 0 ?
		SMIME_KT_OAEP : SMIME_KT_PKCS1;
	if (d->flags & POLICY_D_ENCRYPT_HEADERS)
		opts.flags |= SMIME_ENC_PROTECT_HEADERS;
	opts.max_output = MPA_SMIME_OUT_MAX(blen);
	if (signed_ == 1)
		opts.signed_in = &sgd;   /* the signed message's split is known */
	enc_fd = mpa_tmp_fd(err);
	if (enc_fd < 0) {
		r = mpa_result_of_error(err);
		goto out;
	}
	if (smime_encrypt_fd(body_fd, blen, certs.sk, &opts, enc_fd, &enc_len, err) < 0) {
		r = mpa_is_temporary(err) ? MPA_DEFER : mpa_reject_failed(g, "encrypt", err);
		goto out;
	}
	mpa_scratch_put(ctx->mpa, &in_fd);
	mpa_scratch_put(ctx->mpa, &sig_fd);
	if (mpa_set_output(g, enc_fd, enc_len, signed_ == 1 ? "smime-sign-encrypt" :
		"smime-encrypt", err) < 0) {
		r = mpa_result_of_error(err);
		goto out;
	}
	if (mpa_add_users(ctx, g, err) < 0) {
		r = mpa_result_of_error(err);
		goto out;
	}
	sg_log_mail(SG_LOG_INFO, ctx->id, "S/MIME encrypted for %zu recipient(s) to %zu "
		"certificate(s), %s%s", g->nrcpts, certs.n,
		smime_cipher_name(opts.cipher), signed_ == 1 ? ", signed" : "");
	r = MPA_NEXT;
out:
	mpa_certs_free(&certs);
	smime_signed_deinit(&sgd);
	mpa_scratch_put(ctx->mpa, &in_fd);
	mpa_scratch_put(ctx->mpa, &sig_fd);
	mpa_close(&enc_fd);   /* (the output holds its own dup of it) */
	return r;
}

enum mpa_result mpa_smime_sign_only(struct mpa_ctx *ctx, struct mpa_group *g,
	struct sg_error *err)
{
	const struct policy_decision *d = g->dec;
	struct mime_msg *m = g->msg != NULL ? g->msg : ctx->msg;
	enum mpa_result r = MPA_NEXT;
	size_t max = d->smime_max_size > 0 && d->smime_max_size < SIZE_MAX / 2 ?
		(size_t)d->smime_max_size : SMIME_DEFAULT_MAX;
	uint64_t in_len = 0, sig_len = 0;
	int in_fd = -1, sig_fd = -1, rc;

	if (!(d->flags & POLICY_D_SIGN_OUTPUT) || mpa_msg_ct_kind(m) != MPA_CT_OTHER)
		return MPA_NEXT;   /* encrypted or S/MIME already: not signed again */
	in_fd = mpa_msg_to_fd(ctx->mpa, m, max, &in_len, err);
	if (in_fd < 0) {
		if (err->code != SG_E_LIMIT)
			r = mpa_result_of_error(err);
		goto out;   /* too big to sign: sent unsigned (policy checked it too) */
	}
	sig_fd = mpa_tmp_fd(err);
	if (sig_fd < 0) {
		r = mpa_result_of_error(err);
		goto out;
	}
	rc = mpa_smime_sign(ctx, d, in_fd, in_len, sig_fd, &sig_len, NULL, err);
	if (rc < 0) {
		r = MPA_DEFER;
		goto out;
	}
	mpa_scratch_put(ctx->mpa, &in_fd);
	if (rc == 1 && mpa_set_output(g, sig_fd, sig_len, "smime-sign", err) < 0)
		r = mpa_result_of_error(err);
out:
	mpa_scratch_put(ctx->mpa, &in_fd);
	mpa_close(&sig_fd);   /* (the output holds its own dup of it) */
	return r;
}

/* ---------------------------------------------- encryption notification */

/* Recipients named in one encryption notification. */
#define MPA_SMIME_NOTIFY_RCPTS 1000

/* mpa_notify_method - the notification's method name for a sent group that
 * was encrypted and asked for one (POLICY_D_NOTIFY_ENCRYPTED), else NULL */
static const char *mpa_notify_method(const struct mpa_group *g)
{
	if (g->action != MPA_ACT_PASS || g->dec == NULL || g->done == NULL ||
	    !(g->dec->flags & POLICY_D_NOTIFY_ENCRYPTED))
		return NULL;
	if (strcmp(g->done, "smime-encrypt") == 0 || strcmp(g->done, "smime-sign-encrypt") == 0)
		return "S/MIME";
	if (strncmp(g->done, "pdf", 3) == 0)
		return "PDF";
	return NULL;
}

/* mpa_notify_encrypted_one - one notification about the groups of method */
static int mpa_notify_encrypted_one(struct mpa_ctx *ctx, const char *method,
	struct sg_error *err)
{
	const char *subject = mime_msg_header_get(ctx->msg, "Subject");
	struct template_var *v = NULL;
	size_t n = 0, cap = 0, listed = 0, total = 0, g, i;
	char *more = NULL;
	int rc;

#define MPA_VAR(nm, val) do { \
		if (n == cap) { \
			cap = cap == 0 ? 16 : 2 * cap; \
			v = sg_xrealloc(v, cap * sizeof(*v)); \
		} \
		v[n++] = (struct template_var){(nm), (val)}; \
	} while (0)
	MPA_VAR("subject", subject != NULL ? subject : "");
	MPA_VAR("mail_id", ctx->id);
	MPA_VAR("method", method);
	for (g = 0; g < ctx->ngroups; g++) {
		const struct mpa_group *grp = &ctx->groups[g];
		const char *m = mpa_notify_method(grp);

		if (m == NULL || strcmp(m, method) != 0)
			continue;
		for (i = 0; i < grp->nrcpts; i++, total++)
			if (listed < MPA_SMIME_NOTIFY_RCPTS) {
				MPA_VAR("recipients", ctx->env->rcpts[grp->rcpts[i]].addr);
				listed++;
			}
	}
	if (total > listed) {
		more = sg_xasprintf("... and %zu more", total - listed);
		MPA_VAR("recipients", more);
	}
#undef MPA_VAR
	rc = mpa_notify_originator(ctx, TEMPLATE_ENCRYPTION_NOTIFICATION, v, n, err);
	free(v);
	free(more);
	return rc;
}

enum mpa_result mpa_notify_encrypted(struct mpa_ctx *ctx, struct sg_error *err)
{
	static const char *const methods[] = {"S/MIME", "PDF"};
	bool want[2] = {false, false};
	size_t g, k;
	int internal;

	if (ctx->env->kind != SPOOL_KIND_MESSAGE || ctx->is_own_mail ||
	    ctx->originator[0] == '\0')
		return MPA_NEXT;
	for (g = 0; g < ctx->ngroups; g++) {
		const char *m = mpa_notify_method(&ctx->groups[g]);

		for (k = 0; m != NULL && k < 2; k++)
			want[k] = want[k] || strcmp(m, methods[k]) == 0;
	}
	if (!want[0] && !want[1])
		return MPA_NEXT;
	internal = mpa_originator_internal(ctx, err);
	if (internal < 0)
		return mpa_result_of_error(err);
	if (internal == 0)
		return MPA_NEXT;   /* D-4: no generated mail to outsiders */
	for (k = 0; k < 2; k++)
		if (want[k] && mpa_notify_encrypted_one(ctx, methods[k], err) < 0)
			return mpa_result_of_error(err);
	return MPA_NEXT;
}
