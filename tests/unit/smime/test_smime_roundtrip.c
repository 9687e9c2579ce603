/*
 * test_smime_roundtrip.c - F-SMIME-1/2/3/4/6 through the library alone:
 * sign/verify (clear, opaque, digests, LF input, tamper, unknown signer,
 * untrusted), encrypt/decrypt (ciphers, OAEP, ECDH, several recipients,
 * strict-mode refusal, header protection), nesting and its bound.
 * Independent peers check the same outputs in test_smime_interop.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <ctype.h>
#include <string.h>
#include <cmocka.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <gmime/gmime.h>
#include <openssl/cms.h>
#include <openssl/pem.h>

#include "smime_test.h"

static int
group_setup(void **state)
{
	tenv_init();
	return 0;
}

static int
group_teardown(void **state)
{
	tenv_cleanup();
	return 0;
}

/* the top-level entity of the sample (from its Content-Type field on) */
static const char *
entity_of(const char *msg)
{
	const char *p = strstr(msg, "Content-Type: multipart/mixed");

	assert_non_null(p);
	return p;
}

static void
do_sign(const char *msg, size_t len, struct tkey *k, enum smime_digest d, unsigned flags,
	struct sg_buf *out)
{
	struct smime_signer s = tsigner(k);
	struct smime_sign_opts o = { .digest = d, .flags = flags };
	struct sg_error e = { 0 };

	sg_buf_init(out, 1 << 24);
	if (smime_sign(msg, len, &s, &o, out, &e) < 0)
		fail_msg("smime_sign: %s", e.msg);
}

static void
do_open(const char *msg, size_t len, struct tkeyring *ring, X509_STORE *st, unsigned flags,
	struct smime_result *res, struct sg_buf *out)
{
	struct smime_open_opts o = {
		.decrypt = ring ? tdecrypt_cb : NULL, .decrypt_arg = ring,
		.trust = st ? ttrust_cb : NULL, .trust_arg = st, .flags = flags,
	};
	struct sg_error e = { 0 };

	memset(res, 0, sizeof(*res));
	sg_buf_init(out, 1 << 24);
	if (smime_open(msg, len, &o, res, out, &e) < 0)
		fail_msg("smime_open: %s", e.msg);
}

/* F-SMIME-2: clear-signed, verified, content byte-identical (8-bit, UTF-8,
 * binary attachment), trusted via the callback, outer fields kept. */
static void
test_sign_clear_roundtrip(void **state)
{
	size_t len;
	char *msg = tmsg_sample(1, &len);
	struct tkey *a = tkey_get("alice", "rsa2048");
	X509_STORE *st = tstore();
	struct smime_result res;
	struct sg_buf sig, out;

	do_sign(msg, len, a, SMIME_DIGEST_SHA256, 0, &sig);
	assert_true(tmem_find(sig.data, sig.len, "multipart/signed"));
	assert_true(tmem_find(sig.data, sig.len, "micalg=\"sha-256\""));
	assert_true(tmem_find(sig.data, sig.len, "X-Custom: kept outside\r\n"));
	assert_true(tmem_find(sig.data, sig.len, entity_of(msg)));
	{
		const char *mv = strstr(sig.data, "MIME-Version: 1.0\r\n");

		assert_non_null(mv);   /* exactly one, the new one */
		assert_null(strstr(mv + 1, "MIME-Version:"));
	}

	/* kept signature: output is the input, one valid trusted layer */
	do_open(sig.data, sig.len, NULL, st, 0, &res, &out);
	assert_int_equal(res.n_layers, 1);
	assert_int_equal(res.layers[0].kind, SMIME_LAYER_SIGNED_CLEAR);
	assert_int_equal(res.layers[0].n_signers, 1);
	assert_int_equal(res.layers[0].signers[0].status, SMIME_SIG_VALID);
	assert_int_equal(res.layers[0].signers[0].trusted, 1);
	assert_string_equal(res.layers[0].signers[0].digest, "SHA256");
	assert_true(res.layers[0].signers[0].signing_time > 1700000000);
	assert_int_equal(X509_cmp(res.layers[0].signers[0].cert, a->cert), 0);
	assert_non_null(res.layers[0].certs);
	assert_int_equal(sk_X509_num(res.layers[0].certs), 2);   /* signer + CA chain */
	assert_false(res.is_changed);
	assert_int_equal(out.len, sig.len);
	assert_memory_equal(out.data, sig.data, sig.len);
	smime_result_deinit(&res);
	sg_buf_deinit(&out);

	/* removed signature: the original entity comes back byte for byte */
	do_open(sig.data, sig.len, NULL, st, SMIME_OPEN_REMOVE_SIGNATURE, &res, &out);
	assert_int_equal(res.n_layers, 1);
	assert_true(res.is_changed);
	assert_true(tmem_find(out.data, out.len, entity_of(msg)));
	assert_true(tmem_find(out.data, out.len, "Subject: =?UTF-8?B?R3LDvMOfZQ==?=\r\n"));
	assert_false(tmem_find(out.data, out.len, "pkcs7-signature"));
	smime_result_deinit(&res);
	sg_buf_deinit(&out);
	sg_buf_deinit(&sig);
	X509_STORE_free(st);
	free(msg);
}

/* A quoted one-character boundary (legal MIME; OpenSSL's own reader fails on
 * it) still verifies: the reader gets a normalised Content-Type. */
static void
test_verify_short_boundary(void **state)
{
	size_t len;
	char *msg = tmsg_sample(1, &len), *p, *q;
	struct tkey *a = tkey_get("alice", "rsa2048");
	struct smime_result res;
	struct sg_buf sig, re, out;
	struct sg_error e = { 0 };
	char bd[128];

	do_sign(msg, len, a, SMIME_DIGEST_SHA256, 0, &sig);
	p = strstr(sig.data, "boundary=\"");
	assert_non_null(p);
	p += strlen("boundary=\"");
	q = strchr(p, '"');
	assert_non_null(q);
	snprintf(bd, sizeof(bd), "%.*s", (int)(q - p), p);
	sg_buf_init(&re, 1 << 24);
	for (p = sig.data; (q = strstr(p, bd)) != NULL; p = q + strlen(bd)) {
		assert_int_equal(sg_buf_append(&re, p, (size_t)(q - p), &e), 0);
		assert_int_equal(sg_buf_append_str(&re, "Q", &e), 0);   /* no "--Q" inside */
	}
	assert_int_equal(sg_buf_append_str(&re, p, &e), 0);
	assert_true(tmem_find(re.data, re.len, "boundary=\"Q\""));
	do_open(re.data, re.len, NULL, NULL, SMIME_OPEN_REMOVE_SIGNATURE, &res, &out);
	assert_int_equal(res.n_layers, 1);
	assert_int_equal(res.layers[0].signers[0].status, SMIME_SIG_VALID);
	assert_true(tmem_find(out.data, out.len, entity_of(msg)));
	smime_result_deinit(&res);
	sg_buf_deinit(&out);
	sg_buf_deinit(&re);
	sg_buf_deinit(&sig);
	free(msg);
}

/* F-SMIME-2: SHA-384/512/SHA-1 selectable; EC P-256 and RSA-4096 signers. */
static void
test_sign_digests_and_keys(void **state)
{
	static const struct {
		enum smime_digest d;
		const char *name, *micalg, *alg, *key;
	} tab[] = {
		{SMIME_DIGEST_SHA384, "SHA384", "micalg=\"sha-384\"", "rsa2048", "alice"},
		{SMIME_DIGEST_SHA512, "SHA512", "micalg=\"sha-512\"", "rsa2048", "alice"},
		{SMIME_DIGEST_SHA1, "SHA1", "micalg=\"sha1\"", "rsa2048", "alice"},
		{SMIME_DIGEST_SHA256, "SHA256", "micalg=\"sha-256\"", "ec256", "carol-ec"},
		{SMIME_DIGEST_SHA256, "SHA256", "micalg=\"sha-256\"", "rsa4096", "dave4k"},
	};
	size_t len;
	char *msg = tmsg_sample(1, &len);
	X509_STORE *st = tstore();

	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		struct tkey *k = tkey_get(tab[i].key, tab[i].alg);
		struct smime_result res;
		struct sg_buf sig, out;

		do_sign(msg, len, k, tab[i].d, 0, &sig);
		if (!tmem_find(sig.data, sig.len, tab[i].micalg))
			fail_msg("case %zu: no %s", i, tab[i].micalg);
		do_open(sig.data, sig.len, NULL, st, 0, &res, &out);
		assert_int_equal(res.n_layers, 1);
		if (res.layers[0].signers[0].status != SMIME_SIG_VALID)
			fail_msg("case %zu: got %s (%s) want valid", i,
				smime_sig_status_name(res.layers[0].signers[0].status),
				res.layers[0].signers[0].reason);
		assert_string_equal(res.layers[0].signers[0].digest, tab[i].name);
		assert_int_equal(res.layers[0].signers[0].trusted, 1);
		smime_result_deinit(&res);
		sg_buf_deinit(&out);
		sg_buf_deinit(&sig);
	}
	X509_STORE_free(st);
	free(msg);
}

/* F-SMIME-2: opaque signed-data round trip, LF input canonicalised to CRLF. */
static void
test_sign_opaque_lf_input(void **state)
{
	size_t len, clen;
	char *msg = tmsg_sample(0, &len), *crlf = tmsg_sample(1, &clen);
	struct tkey *a = tkey_get("alice", "rsa2048");
	struct smime_result res;
	struct sg_buf sig, out;

	do_sign(msg, len, a, SMIME_DIGEST_SHA256, SMIME_SIGN_OPAQUE, &sig);
	assert_true(tmem_find(sig.data, sig.len, "smime-type=signed-data"));
	assert_false(tmem_find(sig.data, sig.len, "Gr\xc3\xbc"));   /* inside CMS */
	do_open(sig.data, sig.len, NULL, NULL, SMIME_OPEN_REMOVE_SIGNATURE, &res, &out);
	assert_int_equal(res.n_layers, 1);
	assert_int_equal(res.layers[0].kind, SMIME_LAYER_SIGNED_OPAQUE);
	assert_int_equal(res.layers[0].signers[0].status, SMIME_SIG_VALID);
	assert_int_equal(res.layers[0].signers[0].trusted, -1);   /* no trust callback */
	assert_true(tmem_find(out.data, out.len, entity_of(crlf)));
	smime_result_deinit(&res);
	sg_buf_deinit(&out);
	sg_buf_deinit(&sig);
	free(msg);
	free(crlf);
}

/* smimecap_der - the DER of the SMIMECapabilities attribute of the (only)
 * signer of the opaque-signed message sig (malloc'ed) */
static unsigned char *
smimecap_der(const struct sg_buf *sig, int *len_r)
{
	BIO *b = BIO_new_mem_buf(sig->data, (int)sig->len);
	CMS_ContentInfo *cms = SMIME_read_CMS(b, NULL);
	CMS_SignerInfo *si;
	X509_ATTRIBUTE *attr;
	ASN1_TYPE *t;
	unsigned char *der;
	int i;

	assert_non_null(cms);
	si = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0);
	assert_non_null(si);
	i = CMS_signed_get_attr_by_NID(si, NID_SMIMECapabilities, -1);
	assert_true(i >= 0);
	/* exactly one */
	assert_true(CMS_signed_get_attr_by_NID(si, NID_SMIMECapabilities, i) < 0);
	attr = CMS_signed_get_attr(si, i);
	t = X509_ATTRIBUTE_get0_type(attr, 0);
	assert_non_null(t);
	assert_int_equal(t->type, V_ASN1_SEQUENCE);
	*len_r = t->value.sequence->length;
	der = malloc((size_t)*len_r);
	assert_non_null(der);
	memcpy(der, t->value.sequence->data, (size_t)*len_r);
	CMS_ContentInfo_free(cms);
	BIO_free(b);
	return der;
}

/* Every signature carries OpenSSL's standard SMIMECapabilities (built once
 * per process and reused): the second signature's attribute is the same as
 * the first's and as the list OpenSSL builds now. */
static void
test_sign_smimecap_standard(void **state)
{
	size_t len;
	char *msg = tmsg_sample(1, &len);
	struct tkey *a = tkey_get("alice", "rsa2048");
	STACK_OF(X509_ALGOR) *std = NULL;
	unsigned char *d1, *d2, *want = NULL;
	struct sg_buf s1, s2;
	int l1, l2, lw;

	(void)state;
	do_sign(msg, len, a, SMIME_DIGEST_SHA256, SMIME_SIGN_OPAQUE, &s1);
	do_sign(msg, len, a, SMIME_DIGEST_SHA256, SMIME_SIGN_OPAQUE, &s2);
	d1 = smimecap_der(&s1, &l1);
	d2 = smimecap_der(&s2, &l2);
	assert_true(CMS_add_standard_smimecap(&std));
	lw = i2d_X509_ALGORS(std, &want);
	assert_true(lw > 10);
	assert_int_equal(l1, lw);
	assert_memory_equal(d1, want, (size_t)lw);
	assert_int_equal(l2, lw);
	assert_memory_equal(d2, want, (size_t)lw);
	OPENSSL_free(want);
	sk_X509_ALGOR_pop_free(std, X509_ALGOR_free);
	free(d1);
	free(d2);
	sg_buf_deinit(&s1);
	sg_buf_deinit(&s2);
	free(msg);
}

/* F-SMIME-4: one changed byte in the signed part -> tampered, with reason. */
static void
test_verify_tampered(void **state)
{
	size_t len;
	char *msg = tmsg_sample(1, &len), *p;
	struct tkey *a = tkey_get("alice", "rsa2048");
	struct smime_result res;
	struct sg_buf sig, out;

	do_sign(msg, len, a, SMIME_DIGEST_SHA256, 0, &sig);
	p = memmem(sig.data, sig.len, "K\xc3\xb6ln", 5);
	assert_non_null(p);
	p[0] = 'k';
	do_open(sig.data, sig.len, NULL, NULL, 0, &res, &out);
	assert_int_equal(res.n_layers, 1);
	assert_int_equal(res.layers[0].signers[0].status, SMIME_SIG_TAMPERED);
	assert_true(strlen(res.layers[0].signers[0].reason) > 0);
	smime_result_deinit(&res);
	sg_buf_deinit(&out);
	sg_buf_deinit(&sig);
	free(msg);
}

/* F-SMIME-4: a signature without certificates is "unknown signer" unless the
 * caller supplies the certificate; an untrusted chain is reported as such. */
static void
test_verify_unknown_and_untrusted(void **state)
{
	struct tkey *a = tkey_get("alice", "rsa2048");
	X509_STORE *empty = X509_STORE_new();
	STACK_OF(X509) *extra = sk_X509_new_null();
	struct smime_open_opts o = { 0 };
	struct smime_result res = { 0 };
	struct sg_error e = { 0 };
	struct sg_buf out;
	size_t len;
	char *m;

	tfile_write(tpath("nocert.txt"), "Content-Type: text/plain\r\n\r\nhello\r\n", 35);
	assert_int_equal(trun("openssl cms -sign -nocerts -binary -in %s -signer %s -inkey %s "
		"-out %s 2>/dev/null", tpath("nocert.txt"), a->cert_path, a->key_path,
		tpath("nocert.eml")), 0);
	m = tfile_read(tpath("nocert.eml"), &len);
	assert_non_null(m);
	do_open(m, len, NULL, NULL, 0, &res, &out);
	assert_int_equal(res.n_layers, 1);
	assert_int_equal(res.layers[0].signers[0].status, SMIME_SIG_UNKNOWN_SIGNER);
	assert_null(res.layers[0].signers[0].cert);
	smime_result_deinit(&res);
	sg_buf_deinit(&out);

	sk_X509_push(extra, a->cert);
	o.extra_certs = extra;
	o.trust = ttrust_cb;
	o.trust_arg = empty;
	sg_buf_init(&out, 1 << 20);
	assert_int_equal(smime_open(m, len, &o, &res, &out, &e), 0);
	assert_int_equal(res.layers[0].signers[0].status, SMIME_SIG_VALID);
	assert_int_equal(res.layers[0].signers[0].trusted, 0);
	assert_true(strlen(res.layers[0].signers[0].trust_info) > 0);
	smime_result_deinit(&res);
	sg_buf_deinit(&out);
	sk_X509_free(extra);
	X509_STORE_free(empty);
	free(m);
}

/* F-SMIME-1: every cipher, PKCS#1 v1.5 and OAEP, RSA-2048/4096 and EC P-256,
 * several recipients in one message each decrypting alone, byte-identical. */
static void
test_encrypt_matrix(void **state)
{
	static const struct {
		enum smime_cipher c;
		enum smime_key_transport kt;
		enum smime_layer_kind kind;
		const char *name;
	} tab[] = {
		{SMIME_CIPHER_AES256_CBC, SMIME_KT_PKCS1, SMIME_LAYER_ENVELOPED, "AES-256-CBC"},
		{SMIME_CIPHER_AES192_CBC, SMIME_KT_PKCS1, SMIME_LAYER_ENVELOPED, "AES-192-CBC"},
		{SMIME_CIPHER_AES128_CBC, SMIME_KT_OAEP, SMIME_LAYER_ENVELOPED, "AES-128-CBC"},
		{SMIME_CIPHER_3DES, SMIME_KT_PKCS1, SMIME_LAYER_ENVELOPED, "DES-EDE3-CBC"},
		{SMIME_CIPHER_AES128_GCM, SMIME_KT_PKCS1, SMIME_LAYER_AUTH_ENVELOPED, "AES-128-GCM"},
		{SMIME_CIPHER_AES256_GCM, SMIME_KT_OAEP, SMIME_LAYER_AUTH_ENVELOPED, "AES-256-GCM"},
	};
	struct tkey *keys[3] = {
		tkey_get("bob", "rsa2048"), tkey_get("carol-ec", "ec256"),
		tkey_get("dave4k", "rsa4096"),
	};
	STACK_OF(X509) *rc = sk_X509_new_null();
	size_t len;
	char *msg = tmsg_sample(1, &len);

	for (size_t k = 0; k < 3; k++)
		sk_X509_push(rc, keys[k]->cert);
	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		struct smime_encrypt_opts eo = { .cipher = tab[i].c, .kt = tab[i].kt };
		struct sg_error e = { 0 };
		struct sg_buf enc;

		sg_buf_init(&enc, 1 << 24);
		if (smime_encrypt(msg, len, rc, &eo, &enc, &e) < 0)
			fail_msg("case %zu: %s", i, e.msg);
		assert_false(tmem_find(enc.data, enc.len, "Gr\xc3\xbc"));
		assert_true(tmem_find(enc.data, enc.len, tab[i].kind == SMIME_LAYER_ENVELOPED ?
			"smime-type=enveloped-data" : "smime-type=authEnveloped-data"));
		for (size_t k = 0; k < 3; k++) {
			struct tkey *one[1] = { keys[k] };
			struct tkeyring ring = { one, 1, 0 };
			struct smime_result res;
			struct sg_buf out;

			do_open(enc.data, enc.len, &ring, NULL, 0, &res, &out);
			assert_int_equal(res.n_layers, 1);
			assert_int_equal(res.layers[0].kind, tab[i].kind);
			if (!res.layers[0].is_decrypted)
				fail_msg("case %zu key %zu not decrypted", i, k);
			assert_string_equal(res.layers[0].cipher, tab[i].name);
			assert_int_equal(res.layers[0].n_recipients, 3);   /* exactly the group */
			assert_true(res.layers[0].used_recipient >= 0);
			assert_true(tmem_find(out.data, out.len, entity_of(msg)));
			assert_true(tmem_find(out.data, out.len, "X-Custom: kept outside\r\n"));
			smime_result_deinit(&res);
			sg_buf_deinit(&out);
		}
		sg_buf_deinit(&enc);
	}
	sk_X509_free(rc);
	free(msg);
}

/* F-SMIME-3 strict mode: the callback refuses every key -> the message stays
 * encrypted (output = input), the layer says not decrypted. */
static void
test_decrypt_no_allowed_key(void **state)
{
	struct tkey *bob = tkey_get("bob", "rsa2048"), *eve = tkey_get("eve", "rsa2048");
	STACK_OF(X509) *rc = sk_X509_new_null();
	struct tkey *one[1] = { eve };
	struct tkeyring ring = { one, 1, 0 };
	struct smime_result res;
	struct sg_error e = { 0 };
	struct sg_buf enc, out;
	size_t len;
	char *msg = tmsg_sample(1, &len);

	sk_X509_push(rc, bob->cert);
	sg_buf_init(&enc, 1 << 24);
	assert_int_equal(smime_encrypt(msg, len, rc, NULL, &enc, &e), 0);
	do_open(enc.data, enc.len, &ring, NULL, 0, &res, &out);
	assert_int_equal(ring.calls, 1);
	assert_int_equal(res.n_layers, 1);
	assert_false(res.layers[0].is_decrypted);
	assert_int_equal(res.layers[0].used_recipient, -1);
	assert_true(strstr(res.layers[0].recipients[0], "serial=") != NULL);
	assert_false(res.is_changed);
	assert_int_equal(out.len, enc.len);
	assert_memory_equal(out.data, enc.data, enc.len);
	smime_result_deinit(&res);
	sg_buf_deinit(&out);
	sg_buf_deinit(&enc);
	sk_X509_free(rc);
	free(msg);
}

/* The serial of a recipient in pki's form (lower-case hex, no leading 0). */
static int
serial_cb(void *arg, CMS_ContentInfo *cms, const struct smime_rid *rids, size_t n, BIO *out,
	size_t *used_r, struct sg_error *err)
{
	char *buf = arg;

	if (n != 1 || smime_rid_serial_hex(&rids[0], buf, 64) < 0)
		return -1;
	return 0;
}

static void
test_rid_serial_hex(void **state)
{
	struct tkey *bob = tkey_get("bob", "rsa2048");
	STACK_OF(X509) *rc = sk_X509_new_null();
	struct smime_open_opts o = { .decrypt = serial_cb };
	struct smime_result res = { 0 };
	struct sg_error e = { 0 };
	struct sg_buf enc, out;
	char got[64] = "", want[64];
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(bob->cert), NULL);
	char *hex = BN_bn2hex(bn);
	size_t len;
	char *msg = tmsg_sample(1, &len);

	snprintf(want, sizeof(want), "%s", hex + strspn(hex, "0"));
	for (char *p = want; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	o.decrypt_arg = got;
	sk_X509_push(rc, bob->cert);
	sg_buf_init(&enc, 1 << 24);
	sg_buf_init(&out, 1 << 24);
	assert_int_equal(smime_encrypt(msg, len, rc, NULL, &enc, &e), 0);
	assert_int_equal(smime_open(enc.data, enc.len, &o, &res, &out, &e), 0);
	assert_string_equal(got, want);
	/* independent of BN: the small serial as a number, no leading zero */
	assert_int_equal(strtol(got, NULL, 16), ASN1_INTEGER_get(X509_get0_serialNumber(bob->cert)));
	assert_true(got[0] != '0');
	smime_result_deinit(&res);
	sg_buf_deinit(&enc);
	sg_buf_deinit(&out);
	sk_X509_free(rc);
	OPENSSL_free(hex);
	BN_free(bn);
	free(msg);
}

/* F-SMIME-6 encrypt headers: only transport fields outside, Subject hidden;
 * the whole original message comes back inside as message/rfc822. */
static void
test_encrypt_protect_headers(void **state)
{
	struct tkey *bob = tkey_get("bob", "rsa2048");
	STACK_OF(X509) *rc = sk_X509_new_null();
	struct tkey *one[1] = { bob };
	struct tkeyring ring = { one, 1, 0 };
	struct smime_encrypt_opts eo = { .flags = SMIME_ENC_PROTECT_HEADERS };
	struct smime_result res;
	struct sg_error e = { 0 };
	struct sg_buf enc, out;
	size_t len;
	char *msg = tmsg_sample(1, &len), *body;

	sk_X509_push(rc, bob->cert);
	sg_buf_init(&enc, 1 << 24);
	assert_int_equal(smime_encrypt(msg, len, rc, &eo, &enc, &e), 0);
	body = strstr(enc.data, "\r\n\r\n");
	assert_non_null(body);
	assert_false(tmem_find(enc.data, (size_t)(body - enc.data), "X-Custom"));
	assert_false(tmem_find(enc.data, (size_t)(body - enc.data), "R3LDvMOfZQ"));
	assert_true(tmem_find(enc.data, (size_t)(body - enc.data), "Subject: [...]\r\n"));
	assert_true(tmem_find(enc.data, (size_t)(body - enc.data), "Message-ID: <sample-1"));
	do_open(enc.data, enc.len, &ring, NULL, 0, &res, &out);
	assert_true(res.layers[0].is_decrypted);
	assert_true(tmem_find(out.data, out.len, "Content-Type: message/rfc822\r\n\r\n"));
	assert_true(tmem_find(out.data, out.len, msg));   /* the whole original */
	smime_result_deinit(&res);
	sg_buf_deinit(&out);
	sg_buf_deinit(&enc);
	sk_X509_free(rc);
	free(msg);
}

/* canon_crlf - p[0..len) with every bare LF made CRLF (malloc'ed) */
static char *
canon_crlf(const char *p, size_t len, size_t *len_r)
{
	char *o = malloc(2 * len + 1);
	size_t i, k = 0;

	assert_non_null(o);
	for (i = 0; i < len; i++) {
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
			o[k++] = '\r';
		o[k++] = p[i];
	}
	*len_r = k;
	return o;
}

/* mfd_with - a memfd holding data[0..len), offset at the end */
static int
mfd_with(const void *data, size_t len)
{
	int fd = memfd_create("test", MFD_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(sg_write_all(fd, data, len), 0);
	return fd;
}

/* fd_bytes - bytes [0, len) of fd (malloc'ed) */
static char *
fd_bytes(int fd, uint64_t len)
{
	char *p = malloc((size_t)len + 1);

	assert_non_null(p);
	assert_int_equal(pread(fd, p, (size_t)len, 0), (ssize_t)len);
	p[len] = '\0';
	return p;
}

/* cms_plain - the decrypted content of the pkcs7-mime message m as k */
static char *
cms_plain(const char *m, size_t len, struct tkey *k, size_t *plen_r)
{
	BIO *in = BIO_new_mem_buf(m, (int)len), *out = BIO_new(BIO_s_mem());
	CMS_ContentInfo *cms = SMIME_read_CMS(in, NULL);
	char *p, *r;
	long n;

	assert_non_null(cms);
	assert_int_equal(CMS_decrypt(cms, k->pkey, k->cert, NULL, out, CMS_BINARY), 1);
	n = BIO_get_mem_data(out, &p);
	r = malloc((size_t)n + 1);
	assert_non_null(r);
	memcpy(r, p, (size_t)n);
	*plen_r = (size_t)n;
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	BIO_free(out);
	return r;
}

/* Sign, then encrypt the signed message knowing its split (smime_signed
 * from smime_sign_fd): the same outer header and the same encrypted entity,
 * byte for byte, as when the encryption parses the signed message itself -
 * clear and opaque, LF and CRLF input, with and without header protection. */
static void
test_sign_then_encrypt_known_split(void **state)
{
	struct tkey *a = tkey_get("alice", "rsa2048"), *bob = tkey_get("bob", "rsa2048");
	STACK_OF(X509) *rc = sk_X509_new_null();
	struct smime_signer sg = tsigner(a);
	int crlf, opaque, protect;

	(void)state;
	sk_X509_push(rc, bob->cert);
	for (crlf = 0; crlf < 2; crlf++)
	for (opaque = 0; opaque < 2; opaque++)
	for (protect = 0; protect < 2; protect++) {
		size_t len, p1len, p2len;
		char *msg = tmsg_sample(crlf, &len), *o1, *o2, *p1, *p2, *h1, *h2;
		struct smime_signed sd = { 0 };
		struct smime_sign_opts so = { .flags = opaque ? SMIME_SIGN_OPAQUE : 0,
			.signed_r = &sd };
		struct smime_encrypt_opts eo = {
			.flags = protect ? SMIME_ENC_PROTECT_HEADERS : 0 };
		struct sg_error e = { 0 };
		int in = mfd_with(msg, len), sig = mfd_with(NULL, 0);
		int out1 = mfd_with(NULL, 0), out2 = mfd_with(NULL, 0);
		uint64_t slen = 0, l1 = 0, l2 = 0;

		assert_int_equal(smime_sign_fd(in, len, &sg, &so, sig, &slen, &e), 0);
		assert_true(sd.is_set);
		assert_int_equal(sd.len, slen);
		eo.signed_in = &sd;
		assert_int_equal(smime_encrypt_fd(sig, slen, rc, &eo, out1, &l1, &e), 0);
		eo.signed_in = NULL;
		assert_int_equal(smime_encrypt_fd(sig, slen, rc, &eo, out2, &l2, &e), 0);
		o1 = fd_bytes(out1, l1);
		o2 = fd_bytes(out2, l2);
		h1 = strstr(o1, "\r\n\r\n");
		h2 = strstr(o2, "\r\n\r\n");
		assert_non_null(h1);
		assert_non_null(h2);
		assert_int_equal(h1 - o1, h2 - o2);
		assert_memory_equal(o1, o2, (size_t)(h1 - o1));
		p1 = cms_plain(o1, l1, bob, &p1len);
		p2 = cms_plain(o2, l2, bob, &p2len);
		assert_int_equal(p1len, p2len);
		assert_memory_equal(p1, p2, p1len);
		/* and it is the signed message's entity (from MIME-Version on,
		 * without that field), or with protection the whole of it */
		{
			static const char rfc822[] = "Content-Type: message/rfc822\r\n\r\n";
			char *sm = fd_bytes(sig, slen);
			size_t from = protect ? 0 : (size_t)sd.entity_off, clen;
			char *want = canon_crlf(sm + from, (size_t)slen - from, &clen);
			size_t pre = protect ? strlen(rfc822) : 0;

			assert_int_equal(p1len, pre + clen);
			assert_memory_equal(p1, rfc822, pre);
			assert_memory_equal(p1 + pre, want, clen);
			free(want);
			free(sm);
		}
		free(p1);
		free(p2);
		free(o1);
		free(o2);
		smime_signed_deinit(&sd);
		close(in);
		close(sig);
		close(out1);
		close(out2);
		free(msg);
	}
	sk_X509_free(rc);
}

/* Nested: signed inside encrypted inside signed (opaque), all unwrapped. */
static void
test_nested_layers(void **state)
{
	struct tkey *a = tkey_get("alice", "rsa2048"), *bob = tkey_get("bob", "rsa2048");
	STACK_OF(X509) *rc = sk_X509_new_null();
	struct tkey *one[1] = { bob };
	struct tkeyring ring = { one, 1, 0 };
	X509_STORE *st = tstore();
	struct smime_result res;
	struct sg_error e = { 0 };
	struct sg_buf s1, enc, s2, out;
	size_t len;
	char *msg = tmsg_sample(1, &len);

	sk_X509_push(rc, bob->cert);
	do_sign(msg, len, a, SMIME_DIGEST_SHA256, 0, &s1);
	sg_buf_init(&enc, 1 << 24);
	assert_int_equal(smime_encrypt(s1.data, s1.len, rc, NULL, &enc, &e), 0);
	do_sign(enc.data, enc.len, a, SMIME_DIGEST_SHA512, SMIME_SIGN_OPAQUE, &s2);

	/* without remove: the outer signature goes (S/MIME inside), the inner
	 * clear signature stays */
	do_open(s2.data, s2.len, &ring, st, 0, &res, &out);
	assert_int_equal(res.n_layers, 3);
	assert_int_equal(res.layers[0].kind, SMIME_LAYER_SIGNED_OPAQUE);
	assert_string_equal(res.layers[0].signers[0].digest, "SHA512");
	assert_int_equal(res.layers[1].kind, SMIME_LAYER_ENVELOPED);
	assert_true(res.layers[1].is_decrypted);
	assert_int_equal(res.layers[2].kind, SMIME_LAYER_SIGNED_CLEAR);
	for (size_t i = 0; i < 3; i += 2) {
		assert_int_equal(res.layers[i].signers[0].status, SMIME_SIG_VALID);
		assert_int_equal(res.layers[i].signers[0].trusted, 1);
	}
	assert_true(tmem_find(out.data, out.len, "multipart/signed"));
	assert_true(tmem_find(out.data, out.len, entity_of(msg)));
	smime_result_deinit(&res);
	sg_buf_deinit(&out);

	do_open(s2.data, s2.len, &ring, st, SMIME_OPEN_REMOVE_SIGNATURE, &res, &out);
	assert_int_equal(res.n_layers, 3);
	assert_false(tmem_find(out.data, out.len, "multipart/signed"));
	assert_true(tmem_find(out.data, out.len, entity_of(msg)));
	smime_result_deinit(&res);
	sg_buf_deinit(&out);
	sg_buf_deinit(&s1);
	sg_buf_deinit(&enc);
	sg_buf_deinit(&s2);
	X509_STORE_free(st);
	sk_X509_free(rc);
	free(msg);
}

/* More layers than max_depth -> SG_E_LIMIT with a clear message. */
static void
test_depth_limit(void **state)
{
	struct tkey *a = tkey_get("alice", "rsa2048");
	struct smime_open_opts o = { .flags = SMIME_OPEN_REMOVE_SIGNATURE };
	struct smime_result res = { 0 };
	struct sg_error e = { 0 };
	struct sg_buf cur, out;
	size_t len;
	char *msg = tmsg_sample(1, &len);

	sg_buf_init(&cur, 1 << 24);
	assert_int_equal(sg_buf_append(&cur, msg, len, &e), 0);
	for (int i = 0; i < SMIME_MAX_DEPTH + 1; i++) {
		struct sg_buf next;

		do_sign(cur.data, cur.len, a, SMIME_DIGEST_SHA256, SMIME_SIGN_OPAQUE, &next);
		sg_buf_deinit(&cur);
		cur = next;
	}
	sg_buf_init(&out, 1 << 24);
	assert_int_equal(smime_open(cur.data, cur.len, &o, &res, &out, &e), -1);
	assert_int_equal(e.code, SG_E_LIMIT);
	assert_non_null(strstr(e.msg, "nested S/MIME layers"));
	smime_result_deinit(&res);
	sg_buf_deinit(&out);

	/* a higher bound opens all of them */
	o.max_depth = SMIME_MAX_DEPTH + 1;
	sg_buf_init(&out, 1 << 24);
	assert_int_equal(smime_open(cur.data, cur.len, &o, &res, &out, &e), 0);
	assert_int_equal(res.n_layers, SMIME_MAX_DEPTH + 1);
	assert_true(tmem_find(out.data, out.len, entity_of(msg)));
	smime_result_deinit(&res);
	sg_buf_deinit(&out);
	sg_buf_deinit(&cur);
	free(msg);
}

/* Not S/MIME -> no layer, output = input; broken S/MIME -> SG_E_PARSE. */
static void
test_plain_and_garbage(void **state)
{
	static const char garbage[] = "From: x@example.org\r\nMIME-Version: 1.0\r\n"
		"Content-Type: application/pkcs7-mime; smime-type=enveloped-data\r\n"
		"Content-Transfer-Encoding: base64\r\n\r\nTm90IGEgQ01TIG9iamVjdA==\r\n";
	struct smime_result res = { 0 };
	struct sg_error e = { 0 };
	struct sg_buf out;
	size_t len;
	char *msg = tmsg_sample(1, &len);

	do_open(msg, len, NULL, NULL, SMIME_OPEN_REMOVE_SIGNATURE, &res, &out);
	assert_int_equal(res.n_layers, 0);
	assert_false(res.is_changed);
	assert_int_equal(out.len, len);
	assert_memory_equal(out.data, msg, len);
	assert_int_equal(smime_is_smime(msg, len), 0);
	smime_result_deinit(&res);
	sg_buf_deinit(&out);

	assert_int_equal(smime_is_smime(garbage, sizeof(garbage) - 1), 1);
	sg_buf_init(&out, 1 << 20);
	assert_int_equal(smime_open(garbage, sizeof(garbage) - 1, NULL, &res, &out, &e), -1);
	assert_int_equal(e.code, SG_E_PARSE);
	smime_result_deinit(&res);
	sg_buf_deinit(&out);
	free(msg);
}

/* Fail closed: a recipient key OpenSSL 3.0 cannot use in CMS (X25519) fails
 * the whole call, even next to a good one; an output over max_output is
 * SG_E_LIMIT; in both cases out keeps exactly what it held before. */
static void
test_encrypt_fail_closed(void **state)
{
	struct tkey *bob = tkey_get("bob", "rsa2048");
	STACK_OF(X509) *rc = sk_X509_new_null();
	struct smime_encrypt_opts small = { .max_output = 1200 };   /* > message, < output */
	struct sg_error e = { 0 };
	struct sg_buf out;
	X509 *x;
	size_t len;
	char *msg = tmsg_sample(1, &len);

	assert_int_equal(trun("cd %s && openssl genpkey -algorithm X25519 -out x25519.key && "
		"openssl pkey -in x25519.key -pubout -out x25519.pub && openssl x509 -new "
		"-force_pubkey x25519.pub -CA ca.pem -CAkey ca.key -subj /CN=x25519 -days 10 "
		"-out x25519.pem 2>/dev/null", tenv_dir()), 0);
	x = tload_cert(tpath("x25519.pem"));
	assert_non_null(x);
	sk_X509_push(rc, bob->cert);
	sk_X509_push(rc, x);
	sg_buf_init(&out, 1 << 24);
	assert_int_equal(sg_buf_append_str(&out, "keep", &e), 0);
	assert_int_equal(smime_encrypt(msg, len, rc, NULL, &out, &e), -1);
	assert_int_equal(e.code, SG_E_CRYPTO);
	if (strstr(e.msg, "x25519") == NULL)
		fail_msg("error does not name the recipient: %s", e.msg);
	assert_int_equal(out.len, 4);
	assert_string_equal(out.data, "keep");

	(void)sk_X509_pop(rc);
	memset(&e, 0, sizeof(e));
	if (smime_encrypt(msg, len, rc, &small, &out, &e) != -1)
		fail_msg("msg %zu bytes: output of %zu fits %zu", len, out.len, small.max_output);
	assert_int_equal(e.code, SG_E_LIMIT);
	assert_int_equal(out.len, 4);
	sg_buf_deinit(&out);
	sk_X509_free(rc);
	X509_free(x);
	free(msg);
}

/* Hostile structure: 2 MB of tiny parts (GMime would build every part in
 * memory, ~400 MB per the mime module) - only the header section is parsed
 * here, so the peak RSS grows little; the message passes unchanged. */
static void
test_many_parts_bounded(void **state)
{
	struct smime_result res = { 0 };
	struct sg_error e = { 0 };
	struct sg_buf m, out;
	struct rusage before, after;

	sg_buf_init(&m, 4u << 20);
	assert_int_equal(sg_buf_append_str(&m, "From: x@example.org\r\nMIME-Version: 1.0\r\n"
		"Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; "
		"boundary=\"z\"\r\n\r\n", &e), 0);
	while (m.len < (2u << 20))
		assert_int_equal(sg_buf_append_str(&m, "--z\r\n\r\nx\r\n", &e), 0);
	getrusage(RUSAGE_SELF, &before);
	sg_buf_init(&out, 8u << 20);
	/* no signature part of any use: a parse error, quickly and in bounded memory */
	assert_int_equal(smime_open(m.data, m.len, NULL, &res, &out, &e), -1);
	assert_int_equal(e.code, SG_E_PARSE);
	assert_int_equal(out.len, 0);
	getrusage(RUSAGE_SELF, &after);
	if (after.ru_maxrss - before.ru_maxrss > 64 * 1024)
		fail_msg("peak RSS grew by %ld KB", after.ru_maxrss - before.ru_maxrss);
	smime_result_deinit(&res);
	sg_buf_deinit(&out);
	sg_buf_deinit(&m);
}

/* Option parsing used by the pipeline's settings. */
static void
test_names(void **state)
{
	enum smime_digest d;
	enum smime_cipher c;

	assert_int_equal(smime_digest_parse("SHA-384", &d), 0);
	assert_int_equal(d, SMIME_DIGEST_SHA384);
	assert_int_equal(smime_digest_parse("md5", &d), -1);
	assert_int_equal(smime_cipher_parse("3des", &c), 0);
	assert_int_equal(c, SMIME_CIPHER_3DES);
	assert_int_equal(smime_cipher_parse("aes256-gcm", &c), 0);
	assert_string_equal(smime_cipher_name(c), "AES-256-GCM");
	assert_int_equal(smime_cipher_parse("rc4", &c), -1);
	assert_string_equal(smime_sig_status_name(SMIME_SIG_TAMPERED), "tampered");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_many_parts_bounded),
		cmocka_unit_test(test_sign_clear_roundtrip),
		cmocka_unit_test(test_sign_digests_and_keys),
		cmocka_unit_test(test_sign_opaque_lf_input),
		cmocka_unit_test(test_sign_smimecap_standard),
		cmocka_unit_test(test_verify_tampered),
		cmocka_unit_test(test_verify_short_boundary),
		cmocka_unit_test(test_verify_unknown_and_untrusted),
		cmocka_unit_test(test_encrypt_matrix),
		cmocka_unit_test(test_decrypt_no_allowed_key),
		cmocka_unit_test(test_encrypt_fail_closed),
		cmocka_unit_test(test_rid_serial_hex),
		cmocka_unit_test(test_encrypt_protect_headers),
		cmocka_unit_test(test_sign_then_encrypt_known_split),
		cmocka_unit_test(test_nested_layers),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_plain_and_garbage),
	};

	g_mime_init();
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
