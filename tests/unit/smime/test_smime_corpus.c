/*
 * test_smime_corpus.c - F-SMIME-3/4/7 on the real-client corpus
 * $SG_SRC/../shared/interop-corpus (read by path, never copied; SMIME_CORPUS
 * overrides the location). Every message MANIFEST.md lists is opened with
 * smime_open and must behave as listed:
 *  - 02-thunderbird-nss: expectations read from its expected.tsv at run time
 *    (OpenSSL reference column: decrypt(Bob)=OK, verify=... of the outermost
 *    signature against TestCA.pem, Thunderbird's text="...");
 *  - 01, 03, 04, 07, 10 and the browser-smime/smime-manual files: the table
 *    below, one row per MANIFEST entry.
 * Keys come out of the corpus PKCS#12 files through the openssl CLI.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <gmime/gmime.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "smime_test.h"

static char corpus[512];

/* ------------------------------------------------------------- keys */

struct ckey {
	const char *id;
	const char *p12;       /* corpus-relative, or NULL with pem */
	const char *pass;
	const char *key_pem;   /* corpus-relative PKCS#8 PEM (01) */
	const char *cert_pem;
	struct tkey k;
};

static struct ckey keys[] = {
	{ .id = "bob", .p12 = "02-thunderbird-nss/smime/Bob.p12", .pass = "nss" },
	{ .id = "fran", .p12 = "02-thunderbird-nss/smime-interop/Fran.p12", .pass = "nss" },
	{ .id = "fran-ec", .p12 = "02-thunderbird-nss/smime-interop/Fran-ec.p12", .pass = "nss" },
	{ .id = "tb52", .p12 = "03-real-clients/thunderbird52-simplejavamail/smime_test_user.p12",
		.pass = "letmein" },
	{ .id = "lhp-bob", .p12 = "07-lamps-header-protection/bob.p12", .pass = "bob" },
	{ .id = "lamps-bob", .key_pem = "01-lamps-examples-cms/lamps-bob.decrypt.p8.pem",
		.cert_pem = "01-lamps-examples-cms/lamps-bob.encrypt.crt" },
	{ .id = "lamps-dana", .key_pem = "01-lamps-examples-cms/lamps-dana.decrypt.p8.pem",
		.cert_pem = "01-lamps-examples-cms/lamps-dana.encrypt.crt" },
};

static const char *
cpath(const char *rel)
{
	static char bufs[8][1024];
	static unsigned i;
	char *b = bufs[i++ % 8];

	snprintf(b, sizeof(bufs[0]), "%s/%s", corpus, rel);
	return b;
}

static struct tkey *
ckey(const char *id)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		struct ckey *c = &keys[i];

		if (strcmp(c->id, id) != 0)
			continue;
		if (c->k.cert != NULL)
			return &c->k;
		if (c->p12 != NULL) {
			const char *kp = tpath(c->id), *cp = tpath(id);

			snprintf(c->k.key_path, sizeof(c->k.key_path), "%s.key", kp);
			snprintf(c->k.cert_path, sizeof(c->k.cert_path), "%s.crt", cp);
			/* modern first, then the legacy provider (RC2-40 files) */
			if (trun("openssl pkcs12 -in %s -passin pass:%s -nocerts -nodes -out %s "
				"2>/dev/null || openssl pkcs12 -legacy -in %s -passin pass:%s -nocerts "
				"-nodes -out %s 2>/dev/null", cpath(c->p12), c->pass, c->k.key_path,
				cpath(c->p12), c->pass, c->k.key_path) != 0 ||
			    trun("openssl pkcs12 -in %s -passin pass:%s -clcerts -nokeys -out %s "
				"2>/dev/null || openssl pkcs12 -legacy -in %s -passin pass:%s -clcerts "
				"-nokeys -out %s 2>/dev/null", cpath(c->p12), c->pass, c->k.cert_path,
				cpath(c->p12), c->pass, c->k.cert_path) != 0)
				fail_msg("cannot read %s", c->p12);
		} else {
			snprintf(c->k.key_path, sizeof(c->k.key_path), "%s", cpath(c->key_pem));
			snprintf(c->k.cert_path, sizeof(c->k.cert_path), "%s", cpath(c->cert_pem));
		}
		c->k.cert = tload_cert(c->k.cert_path);
		c->k.pkey = tload_key(c->k.key_path, NULL);
		if (c->k.cert == NULL || c->k.pkey == NULL)
			fail_msg("key %s not loadable", id);
		return &c->k;
	}
	fail_msg("no key %s", id);
	return NULL;
}

/* ---------------------------------------------------------- callbacks */

/* Decrypt with the one key given, or with a password for PWRI recipients
 * (the callback decides; smime only lists the recipients). */
struct cdec {
	struct tkey *key;
	const char *password;
};

static int
cdecrypt_cb(void *arg, CMS_ContentInfo *cms, const struct smime_rid *rids, size_t n,
	BIO *out, size_t *used_r, struct sg_error *err)
{
	struct cdec *d = arg;

	for (size_t i = 0; i < n; i++) {
		if (d->key != NULL && smime_rid_match(&rids[i], d->key->cert)) {
			if (!CMS_decrypt(cms, d->key->pkey, d->key->cert, NULL, out, 0))
				goto fail;
			*used_r = i;
			return 1;
		}
		if (d->password != NULL && rids[i].kind == SMIME_RID_OTHER) {
			if (!CMS_decrypt_set1_password(cms, (unsigned char *)d->password,
				(ossl_ssize_t)strlen(d->password)) ||
			    !CMS_decrypt(cms, NULL, NULL, NULL, out, 0))
				goto fail;
			*used_r = i;
			return 1;
		}
	}
	return 0;
fail:
	sg_error_set_openssl(err, SG_E_CRYPTO, "CMS_decrypt");
	return -1;
}

/* ------------------------------------------------------------ running */

enum want_sig {
	W_ANY,             /* not checked */
	W_NONE,            /* no signed layer */
	W_VALID_TRUSTED,   /* first signed layer: every signer valid and trusted */
	W_VALID_UNTRUSTED, /* valid signatures, no path to the anchors */
	W_UNTRUSTED,       /* no signer trusted (validity not checked) */
	W_VALID,           /* valid, trust not checked (no anchor given) */
	W_TAMPERED,        /* a signer of the first signed layer is tampered */
	W_NOT_VALID,       /* no signer of the first signed layer is valid */
};

struct run {
	int rc;
	struct smime_result res;
	struct sg_buf out;
	struct sg_error err;
};

static void
run_open(const char *path, const char *key, const char *password, const char *anchors,
	STACK_OF(X509) *extra, struct run *r)
{
	struct cdec d = { key ? ckey(key) : NULL, password };
	X509_STORE *st = NULL;
	struct smime_open_opts o = {
		.decrypt = cdecrypt_cb, .decrypt_arg = &d,
		.extra_certs = extra, .flags = SMIME_OPEN_REMOVE_SIGNATURE,
	};
	size_t len;
	char *m = tfile_read(path, &len);

	if (m == NULL)
		fail_msg("missing corpus file %s", path);
	if (anchors != NULL) {
		st = X509_STORE_new();
		if (strcmp(anchors, "system") == 0)
			assert_int_equal(X509_STORE_load_path(st, "/etc/ssl/certs"), 1);
		else
			assert_int_equal(X509_STORE_load_file(st, anchors), 1);
		o.trust = ttrust_cb;
		o.trust_arg = st;
	}
	memset(r, 0, sizeof(*r));
	sg_buf_init(&r->out, 1 << 26);
	r->rc = smime_open(m, len, &o, &r->res, &r->out, &r->err);
	X509_STORE_free(st);
	free(m);
}

static void
run_free(struct run *r)
{
	smime_result_deinit(&r->res);
	sg_buf_deinit(&r->out);
}

static struct smime_layer *
first_signed(struct run *r)
{
	for (size_t i = 0; i < r->res.n_layers; i++) {
		if (r->res.layers[i].kind >= SMIME_LAYER_SIGNED_CLEAR)
			return &r->res.layers[i];
	}
	return NULL;
}

static bool
any_decrypted(struct run *r)
{
	for (size_t i = 0; i < r->res.n_layers; i++) {
		if (r->res.layers[i].kind <= SMIME_LAYER_AUTH_ENVELOPED &&
		    r->res.layers[i].is_decrypted)
			return true;
	}
	return false;
}

static void
check_sig(const char *name, struct run *r, enum want_sig w)
{
	struct smime_layer *l = first_signed(r);
	size_t valid = 0, trusted = 0, tampered = 0;

	if (w == W_ANY)
		return;
	if (w == W_NONE) {
		if (l != NULL)
			fail_msg("%s: unexpected signed layer", name);
		return;
	}
	if (l == NULL || l->n_signers == 0)
		fail_msg("%s: no signed layer", name);
	for (size_t i = 0; i < l->n_signers; i++) {
		valid += l->signers[i].status == SMIME_SIG_VALID;
		trusted += l->signers[i].trusted == 1;
		tampered += l->signers[i].status == SMIME_SIG_TAMPERED;
	}
	switch (w) {
	case W_VALID_TRUSTED:
		if (valid != l->n_signers || trusted != l->n_signers)
			fail_msg("%s: got %s (%s) trusted=%d (%s), want valid+trusted", name,
				smime_sig_status_name(l->signers[0].status), l->signers[0].reason,
				l->signers[0].trusted, l->signers[0].trust_info);
		break;
	case W_VALID_UNTRUSTED:
		if (valid != l->n_signers || trusted != 0)
			fail_msg("%s: got %s trusted=%d, want valid+untrusted", name,
				smime_sig_status_name(l->signers[0].status), l->signers[0].trusted);
		break;
	case W_UNTRUSTED:
		if (trusted != 0)
			fail_msg("%s: a signer is trusted, want none", name);
		break;
	case W_VALID:
		if (valid != l->n_signers)
			fail_msg("%s: got %s (%s), want valid", name,
				smime_sig_status_name(l->signers[0].status), l->signers[0].reason);
		break;
	case W_TAMPERED:
		if (tampered == 0)
			fail_msg("%s: got %s, want tampered", name,
				smime_sig_status_name(l->signers[0].status));
		break;
	case W_NOT_VALID:
		if (valid != 0)
			fail_msg("%s: a signer is valid, want none", name);
		break;
	default:
		break;
	}
}

/* ------------------------------------------ 02: expectations from the TSV */

static void
tsv_field(const char *line, const char *key, char *out, size_t n)
{
	const char *p = strstr(line, key);
	const char *e;

	out[0] = '\0';
	if (p == NULL)
		return;
	p += strlen(key);
	e = strpbrk(p, key[strlen(key) - 1] == '"' ? "\"" : "\t\n");
	if (e == NULL)
		e = p + strlen(p);
	snprintf(out, n, "%.*s", (int)(e - p), p);
}

static void
test_thunderbird_nss_tsv(void **state)
{
	char tsv[1024], *data, *line, *save = NULL;
	size_t len, rows = 0;

	snprintf(tsv, sizeof(tsv), "%s", cpath("02-thunderbird-nss/expected.tsv"));
	data = tfile_read(tsv, &len);
	assert_non_null(data);
	for (line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char file[256], text[256], verify[128], dec[64], path[1024];
		const char *key = NULL, *ref;
		enum want_sig w = W_NONE;
		struct run r;

		if (strncmp(line, "file\t", 5) == 0)
			continue;
		snprintf(file, sizeof(file), "%.*s", (int)strcspn(line, "\t"), line);
		ref = strrchr(line, '\t');
		assert_non_null(ref);
		tsv_field(line, "text=\"", text, sizeof(text));
		tsv_field(ref, "verify=", verify, sizeof(verify));
		tsv_field(ref, "decrypt(", dec, sizeof(dec));
		if (strncmp(dec, "Bob", 3) == 0)
			key = "bob";
		else if (strncmp(dec, "Fran", 4) == 0)
			key = strstr(file, "fran-ec") ? "fran-ec" : "fran";
		else
			key = "bob";   /* Bob is every *.env* recipient */
		if (strncmp(verify, "CMS Verification successful", 27) == 0)
			w = W_VALID_TRUSTED;
		else if (strstr(verify, "content verify error"))
			w = W_TAMPERED;
		else if (strstr(verify, "unable to get local issuer"))
			w = W_UNTRUSTED;   /* OpenSSL stops at the path; the content
			                      may be bad as well (env.mixed) */
		snprintf(path, sizeof(path), "%s/02-thunderbird-nss/%s", corpus, file);
		run_open(path, key, NULL, cpath("02-thunderbird-nss/smime/TestCA.pem"), NULL, &r);
		if (r.rc != 0)
			fail_msg("%s: smime_open: %s", file, r.err.msg);
		if (strstr(dec, "=OK") && !any_decrypted(&r))
			fail_msg("%s: not decrypted", file);
		check_sig(file, &r, w);
		if (text[0] != '\0' && !tmem_find(r.out.data, r.out.len, text))
			fail_msg("%s: text \"%s\" not in the output", file, text);
		run_free(&r);
		rows++;
	}
	assert_int_equal(rows, 68);
	free(data);
}

/* ------------------------------------------------ the MANIFEST table */

struct row {
	const char *file;       /* corpus-relative */
	const char *wrap;       /* DER file: wrap as this smime-type ("" = multipart/signed
	                           over detached_content) */
	const char *key;
	const char *password;
	const char *anchors;    /* corpus-relative PEM, "system", or NULL */
	const char *extra[3];   /* corpus-relative signer certificates */
	int rc;                 /* smime_open result */
	int decrypted;          /* 1 some layer decrypted, 0 an encrypted layer stays, -1 n/a */
	enum want_sig sig;
	const char *text;
	const char *digest;     /* first signer of the first signed layer */
	const char *cipher;     /* first encrypted layer */
};

#define LAMPS "01-lamps-examples-cms/"
#define TB52 "03-real-clients/thunderbird52-simplejavamail/"
#define LHP "07-lamps-header-protection/"
#define SAMPLE "This is some sample content."

static const struct row rows[] = {
	/* 01: RFC 9216 keys, draft-ireland-examples-cms */
	{ LAMPS "encryptedForBobRSAOaep.p7m", "enveloped-data", "lamps-bob", NULL, NULL, {0},
		0, 1, W_NONE, SAMPLE, NULL, NULL },
	{ LAMPS "encryptedForBobAndDana.p7m", "enveloped-data", "lamps-bob", NULL, NULL, {0},
		0, 1, W_NONE, SAMPLE, NULL, "AES-128-CBC" },
	/* advanced: OpenSSL 3.0 cannot (X25519 KARI) -> fails closed, no plaintext */
	{ LAMPS "encryptedForBobAndDana.p7m", "enveloped-data", "lamps-dana", NULL, NULL, {0},
		-1, -1, W_ANY, NULL, NULL, NULL },
	/* ChaCha20-Poly1305: OpenSSL 3.0 "unknown cipher" -> fails closed */
	{ LAMPS "authEnvelopedForBobChaCha20Poly1305.p7m", "authEnveloped-data", "lamps-bob",
		NULL, NULL, {0}, -1, -1, W_ANY, NULL, NULL, NULL },
	{ LAMPS "authEnvelopedForDanaX25519HKDF.p7m", "authEnveloped-data", "lamps-dana", NULL,
		NULL, {0}, -1, -1, W_ANY, NULL, NULL, NULL },
	/* KEK recipient: no certificate key applies -> stays encrypted */
	{ LAMPS "encryptedKekri.p7m", "enveloped-data", "lamps-bob", NULL, NULL, {0},
		0, 0, W_NONE, NULL, NULL, "AES-192-CBC" },
	{ LAMPS "signedByAliceRSA.p7m", "signed-data", NULL, NULL, NULL, {0},
		0, -1, W_VALID, SAMPLE, "SHA256", NULL },
	{ LAMPS "signedByAliceRSAPSS.p7m", "signed-data", NULL, NULL, NULL, {0},
		0, -1, W_VALID, SAMPLE, NULL, NULL },
	/* Ed25519: OpenSSL 3.0 cannot verify -> never reported valid */
	{ LAMPS "signedByCarlosEd25519.p7m", "signed-data", NULL, NULL, NULL, {0},
		0, -1, W_NOT_VALID, SAMPLE, NULL, NULL },
	{ LAMPS "signedByAliceAndCarlosNoCerts.p7m", "signed-data", NULL, NULL, NULL, {0},
		0, -1, W_NOT_VALID, SAMPLE, NULL, NULL },
	{ LAMPS "signedByCarlosDetached.p7m", "", NULL, NULL, NULL,
		{ LAMPS "lamps-carlos.crt" }, 0, -1, W_NOT_VALID, SAMPLE, NULL, NULL },

	/* 02: the files outside expected.tsv */
	{ "02-thunderbird-nss/browser-smime/multipart-alternative.eml", NULL, "bob", NULL,
		NULL, {0}, 0, -1, W_NONE, NULL, NULL, NULL },
	/* OpenSSL: content verify error on the outer layer as well */
	{ "02-thunderbird-nss/browser-smime/nested-sigs.eml", NULL, NULL, NULL,
		"02-thunderbird-nss/smime/TestCA.pem", {0}, 0, -1, W_UNTRUSTED, "level 2",
		NULL, NULL },
	{ "02-thunderbird-nss/smime-manual/outer-pgp-sig-inner-smime-enc.eml", NULL, "bob",
		NULL, NULL, {0}, 0, -1, W_NONE, NULL, NULL, NULL },

	/* 03: real clients */
	{ TB52 "tb52-encrypted.eml", NULL, "tb52", NULL, NULL, {0}, 0, 1, W_NONE,
		"This is an encrypted message, with one embedded image and one dummy=20", /* QP */
		NULL, "DES-EDE3-CBC" },
	{ TB52 "tb52-signed-encrypted.eml", NULL, "tb52", NULL, TB52 "ca.crt", {0}, 0, 1,
		W_VALID_TRUSTED, NULL, "SHA512", "DES-EDE3-CBC" },
	{ TB52 "tb52-signed.eml", NULL, NULL, NULL, TB52 "ca.crt", {0}, 0, -1,
		W_VALID_TRUSTED, NULL, "SHA512", NULL },
	{ "03-real-clients/outlook-simplejavamail/outlook-2018-signed-actalis.eml", NULL, NULL,
		NULL, "system", {0}, 0, -1, W_VALID_TRUSTED, NULL, "SHA1", NULL },
	{ "03-real-clients/outlook-simplejavamail/outlook-2021-signed-actalis-attachments.eml",
		NULL, NULL, NULL, "system", {0}, 0, -1, W_VALID_TRUSTED, NULL, NULL, NULL },
	{ "03-real-clients/thunderbird24-mimekit/tb24-signed-startcom.eml", NULL, NULL, NULL,
		"03-real-clients/thunderbird24-mimekit/StartComCertificationAuthority.crt",
		{ "03-real-clients/thunderbird24-mimekit/StartComClass1PrimaryIntermediateClientCA.crt" },
		0, -1, W_VALID_TRUSTED, NULL, "SHA1", NULL },

	/* 04: password recipients (the callback supplies the password) */
	{ "04-gnupg/samplemsgs/pwri-sample.cbc.p7m", "enveloped-data", NULL, "abc", NULL, {0},
		0, 1, W_NONE, "The police are making more anarchists", NULL, NULL },
	{ "04-gnupg/samplemsgs/pwri-sample.cbc-2.p7m", "enveloped-data", NULL, "abc", NULL, {0},
		0, 1, W_NONE, "The police are making more anarchists", NULL, NULL },
	/* OpenSSL 3.0 cannot parse its GCM parameters -> fails closed */
	{ "04-gnupg/samplemsgs/pwri-sample.gcm.p7m", "authEnveloped-data", NULL, "abc", NULL,
		{0}, -1, -1, W_ANY, NULL, NULL, NULL },

	/* 07: header protection samples */
	{ LHP "smime-multipart-signed.eml", NULL, NULL, NULL, LHP "sample-ca.pem", {0}, 0, -1,
		W_VALID_TRUSTED, NULL, NULL, NULL },
	{ LHP "smime-onepart-signed.eml", NULL, NULL, NULL, LHP "sample-ca.pem", {0}, 0, -1,
		W_VALID_TRUSTED, NULL, NULL, NULL },
	{ LHP "smime-sign+enc.eml", NULL, "lhp-bob", NULL, LHP "sample-ca.pem", {0}, 0, 1,
		W_VALID_TRUSTED, NULL, NULL, NULL },
	{ LHP "smime-enc+legacy-disp.eml", NULL, "lhp-bob", NULL, NULL, {0}, 0, 1, W_NONE,
		"multipart/mixed", NULL, NULL },

	/* 10: RFC 4134, SHA-1 (reported, so policy can call it weak) */
	{ "10-rfc4134/4.2-signed-rsa-no-attrs.eml", NULL, NULL, NULL, "10-rfc4134/CarlRSASelf.pem",
		{0}, 0, -1, W_VALID_TRUSTED, SAMPLE, "SHA1", NULL },
	{ "10-rfc4134/4.5-signed-rsa-all.eml", NULL, NULL, NULL, "10-rfc4134/CarlRSASelf.pem",
		{0}, 0, -1, W_VALID_TRUSTED, SAMPLE, "SHA1", NULL },
};

/* wrap - a DER CMS of the corpus as a message file in the temp dir. */
static const char *
wrap(const struct row *w, size_t i)
{
	static char path[1024];
	char name[64];

	snprintf(name, sizeof(name), "corpus-%zu.eml", i);
	snprintf(path, sizeof(path), "%s", tpath(name));
	if (w->wrap[0] != '\0')
		assert_int_equal(trun("{ printf 'From: x@example.org\\r\\nMIME-Version: 1.0\\r\\n"
			"Content-Type: application/pkcs7-mime; smime-type=%s; name=smime.p7m\\r\\n"
			"Content-Transfer-Encoding: base64\\r\\n\\r\\n'; base64 -w 76 %s | "
			"sed 's/$/\\r/'; } > %s", w->wrap, cpath(w->file), path), 0);
	else   /* detached: the content is the 28 sample bytes, no MIME header */
		assert_int_equal(trun("{ printf 'From: x@example.org\\r\\nMIME-Version: 1.0\\r\\n"
			"Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; "
			"micalg=sha-512; boundary=\"XyZ\"\\r\\n\\r\\n--XyZ\\r\\n%s\\r\\n--XyZ\\r\\n"
			"Content-Type: application/pkcs7-signature\\r\\n"
			"Content-Transfer-Encoding: base64\\r\\n\\r\\n'; base64 -w 76 %s | "
			"sed 's/$/\\r/'; printf -- '--XyZ--\\r\\n'; } > %s", SAMPLE, cpath(w->file),
			path), 0);
	return path;
}

static void
test_manifest_table(void **state)
{
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *w = &rows[i];
		STACK_OF(X509) *extra = sk_X509_new_null();
		char anchors[1024] = "";
		const char *path;
		struct smime_layer *sl;
		struct run r;

		for (int k = 0; k < 3 && w->extra[k]; k++)
			sk_X509_push(extra, tload_cert(cpath(w->extra[k])));
		if (w->anchors)
			snprintf(anchors, sizeof(anchors), "%s", strcmp(w->anchors, "system") == 0 ?
				"system" : cpath(w->anchors));
		path = w->wrap ? wrap(w, i) : cpath(w->file);
		run_open(path, w->key, w->password, w->anchors ? anchors : NULL, extra, &r);
		if (r.rc != w->rc)
			fail_msg("%s: smime_open %d want %d (%s)", w->file, r.rc, w->rc, r.err.msg);
		if (w->rc == 0) {
			if (w->decrypted == 1 && !any_decrypted(&r))
				fail_msg("%s: not decrypted", w->file);
			if (w->decrypted == 0 && (r.res.n_layers == 0 || any_decrypted(&r) ||
				r.res.is_changed))
				fail_msg("%s: should stay encrypted", w->file);
			check_sig(w->file, &r, w->sig);
			if (w->text && !tmem_find(r.out.data, r.out.len, w->text))
				fail_msg("%s: \"%s\" not in the output", w->file, w->text);
			sl = first_signed(&r);
			if (w->digest && (sl == NULL || strcmp(sl->signers[0].digest, w->digest) != 0))
				fail_msg("%s: digest %s want %s", w->file,
					sl ? sl->signers[0].digest : "-", w->digest);
			if (w->cipher && strcmp(r.res.layers[0].cipher, w->cipher) != 0 &&
			    (r.res.n_layers < 2 || strcmp(r.res.layers[1].cipher, w->cipher) != 0))
				fail_msg("%s: cipher %s want %s", w->file, r.res.layers[0].cipher,
					w->cipher);
		} else if (r.out.len != 0) {
			fail_msg("%s: output after an error", w->file);
		}
		run_free(&r);
		sk_X509_pop_free(extra, X509_free);
	}
}

/* The two signers without certificates: unknown without help; with the
 * certificates Alice's RSA signature is valid, Carlos' Ed25519 is not. */
static void
test_two_signers_no_certs(void **state)
{
	static const struct row w = { .file = LAMPS "signedByAliceAndCarlosNoCerts.p7m",
		.wrap = "signed-data" };
	STACK_OF(X509) *extra = sk_X509_new_null();
	const char *path = wrap(&w, 999);
	struct smime_layer *l;
	struct run r;

	run_open(path, NULL, NULL, NULL, NULL, &r);
	assert_int_equal(r.rc, 0);
	l = first_signed(&r);
	assert_non_null(l);
	assert_int_equal(l->n_signers, 2);
	assert_int_equal(l->signers[0].status, SMIME_SIG_UNKNOWN_SIGNER);
	assert_int_equal(l->signers[1].status, SMIME_SIG_UNKNOWN_SIGNER);
	run_free(&r);

	sk_X509_push(extra, tload_cert(cpath(LAMPS "lamps-alice.crt")));
	sk_X509_push(extra, tload_cert(cpath(LAMPS "lamps-carlos.crt")));
	run_open(path, NULL, NULL, NULL, extra, &r);
	assert_int_equal(r.rc, 0);
	l = first_signed(&r);
	assert_non_null(l);
	for (size_t i = 0; i < 2; i++) {
		X509_NAME *subj = X509_get_subject_name(l->signers[i].cert);
		char cn[64] = "";

		X509_NAME_get_text_by_NID(subj, NID_commonName, cn, sizeof(cn));
		if (strstr(cn, "Alice"))
			assert_int_equal(l->signers[i].status, SMIME_SIG_VALID);
		else
			assert_int_not_equal(l->signers[i].status, SMIME_SIG_VALID);
	}
	run_free(&r);
	sk_X509_pop_free(extra, X509_free);
}

/* EFAIL bait/prey: encrypted parts below the top level are never decrypted
 * or merged (the message passes unchanged); a PGP-signed outer layer is
 * not S/MIME and passes unchanged too; a signed part inside multipart/mixed
 * with an unsigned list header/footer is not reported as a signed message
 * (no layer: the unsigned parts are never labelled signed). */
static void
test_inner_parts_untouched(void **state)
{
	static const char *const files[] = {
		"02-thunderbird-nss/browser-smime/multipart-alternative.eml",
		"02-thunderbird-nss/smime-manual/outer-pgp-sig-inner-smime-enc-sig.eml",
		"02-thunderbird-nss/browser-smime/alice.dsig.SHA256.multipart.in.mixed.eml",
		"02-thunderbird-nss/browser-smime/alice.dsig.SHA256.multipart.in.mixed.with.header.eml",
	};

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		size_t len;
		char *m = tfile_read(cpath(files[i]), &len);
		struct run r;

		assert_non_null(m);
		run_open(cpath(files[i]), "bob", NULL, NULL, NULL, &r);
		assert_int_equal(r.rc, 0);
		assert_int_equal(r.res.n_layers, 0);
		assert_int_equal(r.out.len, len);
		assert_memory_equal(r.out.data, m, len);
		assert_false(tmem_find(r.out.data, r.out.len, "SECRET-TEXT"));
		run_free(&r);
		free(m);
	}
}

static int
group_setup(void **state)
{
	const char *c = getenv("SMIME_CORPUS"), *src = getenv("SG_SRC");

	/* next to the project, like the pki tests: $SG_SRC/../shared/... */
	if (c != NULL)
		snprintf(corpus, sizeof(corpus), "%s", c);
	else
		snprintf(corpus, sizeof(corpus), "%s/../shared/interop-corpus", src ? src : ".");
	tenv_init();
	return 0;
}

static int
group_teardown(void **state)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		X509_free(keys[i].k.cert);
		EVP_PKEY_free(keys[i].k.pkey);
	}
	tenv_cleanup();
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_thunderbird_nss_tsv),
		cmocka_unit_test(test_manifest_table),
		cmocka_unit_test(test_two_signers_no_certs),
		cmocka_unit_test(test_inner_parts_untouched),
	};

	g_mime_init();
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
