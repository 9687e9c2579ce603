/*
 * test_smime_interop.c - F-SMIME-7: our output read by real peers and their
 * output read by us. Peers run as subprocesses on files in the test's temp
 * dir: OpenSSL `openssl cms`, NSS `cmsutil` (RSA PKCS#1 v1.5 + AES-CBC only),
 * GnuPG `gpgsm` (same; 3DES PKCS#12, --passphrase-fd, trustlist.txt) and
 * Bouncy Castle (tests/unit/smime/java/SmimeBc.java compiled here with the
 * Debian bc*.jar). A missing peer FAILS the test (no silent skip).
 * Checked: content byte-identical (8-bit UTF-8 text + binary attachment),
 * signature verdicts, RSA-2048/4096, EC P-256, CBC/GCM, OAEP, clear and
 * opaque, several recipients, CRLF and LF input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <gmime/gmime.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "smime_test.h"

#define BC_CP "/usr/share/java/bcprov.jar:/usr/share/java/bcpkix.jar:" \
	"/usr/share/java/bcutil.jar"

static const char outer[] = "From: Alice <alice@example.org>\r\n"
	"To: Bob <bob@example.org>\r\nSubject: interop\r\n";

static struct {
	char *msg;          /* sample message, CRLF */
	size_t len;
	char *entity;       /* its top-level entity (what peers sign/encrypt) */
	size_t elen;
	char entity_path[1024];
	struct tkey *alice, *bob, *carol, *dave;
} T;

static int
group_setup(void **state)
{
	tenv_init();
	T.msg = tmsg_sample(1, &T.len);
	T.entity = strstr(T.msg, "Content-Type: multipart/mixed");
	T.elen = T.len - (size_t)(T.entity - T.msg);
	snprintf(T.entity_path, sizeof(T.entity_path), "%s", tpath("entity.txt"));
	tfile_write(T.entity_path, T.entity, T.elen);
	T.alice = tkey_get("alice", "rsa2048");
	T.bob = tkey_get("bob", "rsa2048");
	T.carol = tkey_get("carol-ec", "ec256");
	T.dave = tkey_get("dave4k", "rsa4096");
	return 0;
}

static int
group_teardown(void **state)
{
	/* stop the gpg-agent that gpgsm started for the temp GNUPGHOME */
	trun("test -d %s/gnupg && GNUPGHOME=%s/gnupg gpgconf --kill all >/dev/null 2>&1",
		tenv_dir(), tenv_dir());
	free(T.msg);
	tenv_cleanup();
	return 0;
}

/* ------------------------------------------------------------- helpers */

static void
our_sign(struct tkey *k, unsigned flags, enum smime_digest d, const char *path)
{
	struct smime_signer s = tsigner(k);
	struct smime_sign_opts o = { .digest = d, .flags = flags };
	struct sg_error e = { 0 };
	struct sg_buf out;

	sg_buf_init(&out, 1 << 24);
	if (smime_sign(T.msg, T.len, &s, &o, &out, &e) < 0)
		fail_msg("smime_sign: %s", e.msg);
	tfile_write(path, out.data, out.len);
	sg_buf_deinit(&out);
}

static void
our_encrypt(struct tkey **keys, size_t n, enum smime_cipher c, enum smime_key_transport kt,
	const char *path)
{
	STACK_OF(X509) *rc = sk_X509_new_null();
	struct smime_encrypt_opts o = { .cipher = c, .kt = kt };
	struct sg_error e = { 0 };
	struct sg_buf out;

	for (size_t i = 0; i < n; i++)
		sk_X509_push(rc, keys[i]->cert);
	sg_buf_init(&out, 1 << 24);
	if (smime_encrypt(T.msg, T.len, rc, &o, &out, &e) < 0)
		fail_msg("smime_encrypt: %s", e.msg);
	tfile_write(path, out.data, out.len);
	sg_buf_deinit(&out);
	sk_X509_free(rc);
}

/* assert_file_is_entity - the peer's plaintext equals our entity exactly. */
static void
assert_file_is_entity(const char *path, const char *what)
{
	size_t len;
	char *d = tfile_read(path, &len);

	if (d == NULL)
		fail_msg("%s: no output %s", what, path);
	if (len != T.elen || memcmp(d, T.entity, len) != 0)
		fail_msg("%s: content differs (got %zu bytes want %zu)", what, len, T.elen);
	free(d);
}

/* mime_body_to_der - base64 body of our application/pkcs7-mime output (or
 * the p7s part of multipart/signed when p7s) into a DER file. */
static void
mime_to_der(const char *in, const char *der, int p7s)
{
	if (p7s)
		assert_int_equal(trun("awk 'BEGIN{s=0} /^Content-Type: application\\/pkcs7-signature/"
			"{s=1} s==1 && /^\\r?$/ {s=2; next} s==2 && /^--/ {exit} s==2 {print}' %s | "
			"tr -d '\\r' | base64 -d > %s", in, der), 0);
	else
		assert_int_equal(trun("awk 'BEGIN{s=0} s==1 {print} /^\\r?$/ {s=1}' %s | "
			"tr -d '\\r' | base64 -d > %s", in, der), 0);
}

/* wrap_der - a message: outer fields + application/pkcs7-mime of der. */
static void
wrap_der(const char *der, const char *smime_type, const char *path)
{
	assert_int_equal(trun("{ printf '%sMIME-Version: 1.0\\r\\nContent-Type: "
		"application/pkcs7-mime; smime-type=%s; name=smime.p7m\\r\\n"
		"Content-Transfer-Encoding: base64\\r\\n\\r\\n'; base64 -w 76 %s | sed 's/$/\\r/'; } "
		"> %s", outer, smime_type, der, path), 0);
}

/* wrap_detached - a multipart/signed from the entity + DER signature. */
static void
wrap_detached(const char *p7s, const char *path)
{
	assert_int_equal(trun("{ printf '%sMIME-Version: 1.0\\r\\nContent-Type: multipart/signed; "
		"protocol=\"application/pkcs7-signature\"; micalg=sha-256; boundary=\"XyZ\"\\r\\n\\r\\n"
		"--XyZ\\r\\n'; cat %s; printf '\\r\\n--XyZ\\r\\nContent-Type: application/pkcs7-signature;"
		" name=smime.p7s\\r\\nContent-Transfer-Encoding: base64\\r\\n\\r\\n'; "
		"base64 -w 76 %s | sed 's/$/\\r/'; printf -- '--XyZ--\\r\\n'; } > %s",
		outer, T.entity_path, p7s, path), 0);
}

/* our_open_file - smime_open the file; checks the entity is recovered and
 * every layer decrypted / every signer valid and trusted. */
static void
our_open_file(const char *path, struct tkey *key, size_t want_layers, const char *what)
{
	struct tkey *one[1] = { key };
	struct tkeyring ring = { one, key ? 1 : 0, 0 };
	X509_STORE *st = tstore();
	struct smime_open_opts o = {
		.decrypt = tdecrypt_cb, .decrypt_arg = &ring, .trust = ttrust_cb,
		.trust_arg = st, .flags = SMIME_OPEN_REMOVE_SIGNATURE,
	};
	struct smime_result res = { 0 };
	struct sg_error e = { 0 };
	struct sg_buf out;
	size_t len;
	char *m = tfile_read(path, &len);

	if (m == NULL)
		fail_msg("%s: no input %s", what, path);
	sg_buf_init(&out, 1 << 24);
	if (smime_open(m, len, &o, &res, &out, &e) < 0)
		fail_msg("%s: smime_open: %s", what, e.msg);
	if (res.n_layers != want_layers)
		fail_msg("%s: %zu layers want %zu", what, res.n_layers, want_layers);
	for (size_t i = 0; i < res.n_layers; i++) {
		struct smime_layer *l = &res.layers[i];

		if (l->kind <= SMIME_LAYER_AUTH_ENVELOPED && !l->is_decrypted)
			fail_msg("%s: layer %zu not decrypted", what, i);
		for (size_t j = 0; j < l->n_signers; j++) {
			if (l->signers[j].status != SMIME_SIG_VALID || l->signers[j].trusted != 1)
				fail_msg("%s: signer %zu: %s (%s) trusted=%d", what, j,
					smime_sig_status_name(l->signers[j].status),
					l->signers[j].reason, l->signers[j].trusted);
		}
	}
	if (!tmem_find(out.data, out.len, T.entity))
		fail_msg("%s: entity not byte-identical in the output", what);
	smime_result_deinit(&res);
	sg_buf_deinit(&out);
	X509_STORE_free(st);
	free(m);
}

/* ------------------------------------------------------------- OpenSSL */

static void
test_openssl_reads_ours(void **state)
{
	static const struct {
		enum smime_cipher c;
		enum smime_key_transport kt;
	} enc[] = {
		{SMIME_CIPHER_AES256_CBC, SMIME_KT_PKCS1}, {SMIME_CIPHER_AES128_CBC, SMIME_KT_OAEP},
		{SMIME_CIPHER_3DES, SMIME_KT_PKCS1}, {SMIME_CIPHER_AES256_GCM, SMIME_KT_PKCS1},
		{SMIME_CIPHER_AES128_GCM, SMIME_KT_OAEP},
	};
	struct tkey *rcpts[3] = { T.bob, T.carol, T.dave };

	/* signatures: clear (SHA-256/512, RSA, EC) and opaque */
	our_sign(T.alice, 0, SMIME_DIGEST_SHA256, tpath("o-clear.eml"));
	our_sign(T.carol, 0, SMIME_DIGEST_SHA512, tpath("o-clear-ec.eml"));
	our_sign(T.dave, SMIME_SIGN_OPAQUE, SMIME_DIGEST_SHA384, tpath("o-opaque.eml"));
	for (int i = 0; i < 3; i++) {
		static const char *const f[] = { "o-clear.eml", "o-clear-ec.eml", "o-opaque.eml" };

		if (trun("openssl cms -verify -CAfile %s -in %s -out %s.out 2>%s.err",
			tenv_ca_path(), tpath(f[i]), tpath(f[i]), tpath(f[i])) != 0)
			fail_msg("openssl cms -verify %s failed", f[i]);
		assert_file_is_entity(tpath(i == 0 ? "o-clear.eml.out" : i == 1 ?
			"o-clear-ec.eml.out" : "o-opaque.eml.out"), f[i]);
	}
	/* LF input: signed and encrypted in canonical CRLF form */
	{
		size_t llen;
		char *lf = tmsg_sample(0, &llen);
		struct smime_signer sg = tsigner(T.alice);
		STACK_OF(X509) *one = sk_X509_new_null();
		struct sg_error e = { 0 };
		struct sg_buf s1, s2;

		sk_X509_push(one, T.bob->cert);
		sg_buf_init(&s1, 1 << 24);
		sg_buf_init(&s2, 1 << 24);
		assert_int_equal(smime_sign(lf, llen, &sg, NULL, &s1, &e), 0);
		assert_int_equal(smime_encrypt(lf, llen, one, NULL, &s2, &e), 0);
		tfile_write(tpath("o-lf-sig.eml"), s1.data, s1.len);
		tfile_write(tpath("o-lf-enc.eml"), s2.data, s2.len);
		assert_int_equal(trun("openssl cms -verify -CAfile %s -in %s -out %s 2>/dev/null",
			tenv_ca_path(), tpath("o-lf-sig.eml"), tpath("o-lf-sig.out")), 0);
		assert_file_is_entity(tpath("o-lf-sig.out"), "openssl verify (LF input)");
		assert_int_equal(trun("openssl cms -decrypt -binary -in %s -recip %s -inkey %s -out %s "
			"2>/dev/null", tpath("o-lf-enc.eml"), T.bob->cert_path, T.bob->key_path,
			tpath("o-lf-enc.out")), 0);
		assert_file_is_entity(tpath("o-lf-enc.out"), "openssl decrypt (LF input)");
		sg_buf_deinit(&s1);
		sg_buf_deinit(&s2);
		sk_X509_free(one);
		free(lf);
	}
	/* encryption to three recipients; each decrypts alone */
	for (size_t i = 0; i < sizeof(enc) / sizeof(enc[0]); i++) {
		our_encrypt(rcpts, 3, enc[i].c, enc[i].kt, tpath("o-enc.eml"));
		for (int k = 0; k < 3; k++) {
			if (trun("openssl cms -decrypt -binary -in %s -recip %s -inkey %s -out %s "
				"2>/dev/null", tpath("o-enc.eml"), rcpts[k]->cert_path,
				rcpts[k]->key_path, tpath("o-enc.out")) != 0)
				fail_msg("openssl cms -decrypt case %zu key %d failed", i, k);
			assert_file_is_entity(tpath("o-enc.out"), "openssl decrypt");
			remove(tpath("o-enc.out"));
		}
	}
}

static void
test_we_read_openssl(void **state)
{
	const char *e = T.entity_path;

	/* clear-signed (openssl writes the multipart/signed itself) */
	assert_int_equal(trun("{ printf '%s'; openssl cms -sign -binary -crlfeol -in %s -signer %s "
		"-inkey %s -certfile %s -md sha256; } > %s 2>/dev/null", outer, e,
		T.alice->cert_path, T.alice->key_path, tenv_ca_path(), tpath("s-clear.eml")), 0);
	our_open_file(tpath("s-clear.eml"), NULL, 1, "openssl clear-signed");
	/* opaque, EC signer */
	assert_int_equal(trun("{ printf '%s'; openssl cms -sign -binary -nodetach -crlfeol -in %s "
		"-signer %s -inkey %s -md sha384; } > %s 2>/dev/null", outer, e,
		T.carol->cert_path, T.carol->key_path, tpath("s-opaque.eml")), 0);
	our_open_file(tpath("s-opaque.eml"), NULL, 1, "openssl opaque EC");
	/* encrypted: AES-256-CBC to RSA-4096, GCM to RSA, OAEP, ECDH */
	assert_int_equal(trun("{ printf '%s'; openssl cms -encrypt -binary -crlfeol -aes256 -in %s %s; }"
		" > %s 2>/dev/null", outer, e, T.dave->cert_path, tpath("s-cbc.eml")), 0);
	our_open_file(tpath("s-cbc.eml"), T.dave, 1, "openssl AES-256-CBC RSA-4096");
	assert_int_equal(trun("{ printf '%s'; openssl cms -encrypt -binary -crlfeol -aes-256-gcm "
		"-in %s %s; } > %s 2>/dev/null", outer, e, T.bob->cert_path, tpath("s-gcm.eml")), 0);
	our_open_file(tpath("s-gcm.eml"), T.bob, 1, "openssl AES-256-GCM");
	assert_int_equal(trun("{ printf '%s'; openssl cms -encrypt -binary -crlfeol -aes128 -in %s "
		"-recip %s -keyopt rsa_padding_mode:oaep; } > %s 2>/dev/null", outer, e,
		T.bob->cert_path, tpath("s-oaep.eml")), 0);
	our_open_file(tpath("s-oaep.eml"), T.bob, 1, "openssl OAEP");
	assert_int_equal(trun("{ printf '%s'; openssl cms -encrypt -binary -crlfeol -aes256 -in %s %s %s; }"
		" > %s 2>/dev/null", outer, e, T.carol->cert_path, T.bob->cert_path,
		tpath("s-ecdh.eml")), 0);
	our_open_file(tpath("s-ecdh.eml"), T.carol, 1, "openssl ECDH (2 recipients)");
	/* sign then encrypt, LF line endings on the wire */
	assert_int_equal(trun("openssl cms -sign -binary -in %s -signer %s -inkey %s -certfile %s "
		"> %s 2>/dev/null && { printf 'From: a@example.org\\nSubject: lf\\n'; "
		"openssl cms -encrypt -aes256 -in %s %s; } > %s 2>/dev/null", e, T.alice->cert_path,
		T.alice->key_path, tenv_ca_path(), tpath("s-in.eml"), tpath("s-in.eml"),
		T.bob->cert_path, tpath("s-lf.eml")), 0);
	our_open_file(tpath("s-lf.eml"), T.bob, 2, "openssl signed+encrypted, LF");
}

/* ----------------------------------------------------------------- NSS */

static void
nss_db(void)
{
	static int done;

	if (done)
		return;
	if (!tprog("cmsutil") || !tprog("certutil") || !tprog("pk12util"))
		fail_msg("NSS tools missing: install libnss3-tools");
	assert_int_equal(trun("mkdir -p %s && certutil -N -d sql:%s --empty-password && "
		"certutil -A -d sql:%s -n testca -t CT,C,C -i %s && "
		"pk12util -i %s -d sql:%s -W test >/dev/null && "
		"pk12util -i %s -d sql:%s -W test >/dev/null", tpath("nss"), tpath("nss"),
		tpath("nss"), tenv_ca_path(), T.bob->p12_path, tpath("nss"),
		T.alice->p12_path, tpath("nss")), 0);
	done = 1;
}

static void
test_nss_reads_ours(void **state)
{
	struct tkey *rcpts[2] = { T.bob, T.dave };

	nss_db();
	our_encrypt(rcpts, 2, SMIME_CIPHER_AES256_CBC, SMIME_KT_PKCS1, tpath("n-enc.eml"));
	mime_to_der(tpath("n-enc.eml"), tpath("n-enc.der"), 0);
	if (trun("cmsutil -D -i %s -d sql:%s -o %s 2>%s", tpath("n-enc.der"), tpath("nss"),
		tpath("n-enc.out"), tpath("n-enc.err")) != 0)
		fail_msg("cmsutil -D (decrypt) failed");
	assert_file_is_entity(tpath("n-enc.out"), "NSS decrypt");

	our_sign(T.alice, SMIME_SIGN_OPAQUE, SMIME_DIGEST_SHA256, tpath("n-op.eml"));
	mime_to_der(tpath("n-op.eml"), tpath("n-op.der"), 0);
	if (trun("cmsutil -D -h 1 -n -i %s -d sql:%s >%s.log 2>&1 && grep -q 'GoodSignature' %s.log "
		"&& cmsutil -D -i %s -d sql:%s -o %s", tpath("n-op.der"), tpath("nss"), tpath("n-op"),
		tpath("n-op"), tpath("n-op.der"), tpath("nss"), tpath("n-op.out")) != 0)
		fail_msg("cmsutil: opaque signature not GoodSignature");
	assert_file_is_entity(tpath("n-op.out"), "NSS opaque content");

	our_sign(T.alice, 0, SMIME_DIGEST_SHA256, tpath("n-cl.eml"));
	mime_to_der(tpath("n-cl.eml"), tpath("n-cl.der"), 1);
	if (trun("cmsutil -D -h 1 -n -c %s -i %s -d sql:%s >%s.log 2>&1 && grep -q 'GoodSignature' %s.log",
		T.entity_path, tpath("n-cl.der"), tpath("nss"), tpath("n-cl"), tpath("n-cl")) != 0)
		fail_msg("cmsutil: clear signature not GoodSignature");
}

static void
test_we_read_nss(void **state)
{
	nss_db();
	assert_int_equal(trun("cmsutil -E -r bob@example.org -d sql:%s -i %s -o %s 2>/dev/null",
		tpath("nss"), T.entity_path, tpath("ns-enc.der")), 0);
	wrap_der(tpath("ns-enc.der"), "enveloped-data", tpath("ns-enc.eml"));
	our_open_file(tpath("ns-enc.eml"), T.bob, 1, "NSS enveloped");

	assert_int_equal(trun("cmsutil -S -N alice -H SHA256 -d sql:%s -i %s -o %s 2>/dev/null",
		tpath("nss"), T.entity_path, tpath("ns-op.der")), 0);
	wrap_der(tpath("ns-op.der"), "signed-data", tpath("ns-op.eml"));
	our_open_file(tpath("ns-op.eml"), NULL, 1, "NSS opaque signed");

	assert_int_equal(trun("cmsutil -S -T -N alice -H SHA256 -d sql:%s -i %s -o %s 2>/dev/null",
		tpath("nss"), T.entity_path, tpath("ns-cl.der")), 0);
	wrap_detached(tpath("ns-cl.der"), tpath("ns-cl.eml"));
	our_open_file(tpath("ns-cl.eml"), NULL, 1, "NSS detached signed");
}

/* --------------------------------------------------------------- gpgsm */

#define GPGSM "GNUPGHOME=%s gpgsm --batch --disable-crl-checks --disable-policy-checks " \
	"--pinentry-mode loopback "

/* ghome - the GNUPGHOME path (a stable copy: tpath buffers rotate). */
static const char *
ghome(void)
{
	static char h[1024];

	snprintf(h, sizeof(h), "%s", tpath("gnupg"));
	return h;
}

static void
gpgsm_home(void)
{
	static int done;
	const char *h = ghome();

	if (done)
		return;
	if (!tprog("gpgsm"))
		fail_msg("gpgsm missing: install gpgsm");
	assert_int_equal(trun("mkdir -m 700 -p %s && echo allow-loopback-pinentry > %s/gpg-agent.conf"
		" && openssl x509 -in %s -noout -fingerprint -sha1 | sed 's/.*=//; s/$/ S relax/' "
		"> %s/trustlist.txt", h, h, tenv_ca_path(), h), 0);
	assert_int_equal(trun(GPGSM "--import %s >/dev/null 2>&1", h, tenv_ca_path()), 0);
	assert_int_equal(trun("echo test | " GPGSM "--passphrase-fd 0 --import %s >/dev/null 2>&1",
		h, T.bob->p12_path), 0);
	assert_int_equal(trun("echo test | " GPGSM "--passphrase-fd 0 --import %s >/dev/null 2>&1",
		h, T.alice->p12_path), 0);
	done = 1;
}

static void
test_gpgsm_reads_ours(void **state)
{
	const char *h = ghome();
	struct tkey *rcpts[1] = { T.bob };

	gpgsm_home();
	our_encrypt(rcpts, 1, SMIME_CIPHER_AES256_CBC, SMIME_KT_PKCS1, tpath("g-enc.eml"));
	mime_to_der(tpath("g-enc.eml"), tpath("g-enc.der"), 0);
	if (trun("echo test | " GPGSM "--passphrase-fd 0 --decrypt -o %s %s 2>%s", h,
		tpath("g-enc.out"), tpath("g-enc.der"), tpath("g-enc.err")) != 0)
		fail_msg("gpgsm --decrypt failed");
	assert_file_is_entity(tpath("g-enc.out"), "gpgsm decrypt");

	our_sign(T.alice, SMIME_SIGN_OPAQUE, SMIME_DIGEST_SHA256, tpath("g-op.eml"));
	mime_to_der(tpath("g-op.eml"), tpath("g-op.der"), 0);
	if (trun(GPGSM "--status-fd 1 --verify -o %s %s 2>>%s | grep -q '^\\[GNUPG:\\] GOODSIG'",
		h, tpath("g-op.out"), tpath("g-op.der"), tpath("gpgsm.log")) != 0)
		fail_msg("gpgsm --verify opaque: no GOODSIG");
	assert_file_is_entity(tpath("g-op.out"), "gpgsm opaque content");

	our_sign(T.alice, 0, SMIME_DIGEST_SHA256, tpath("g-cl.eml"));
	mime_to_der(tpath("g-cl.eml"), tpath("g-cl.der"), 1);
	if (trun(GPGSM "--status-fd 1 --verify %s %s 2>>%s | grep -q '^\\[GNUPG:\\] GOODSIG'",
		h, tpath("g-cl.der"), T.entity_path, tpath("gpgsm.log")) != 0)
		fail_msg("gpgsm --verify detached: no GOODSIG");
}

static void
test_we_read_gpgsm(void **state)
{
	const char *h = ghome();

	gpgsm_home();
	assert_int_equal(trun(GPGSM "--encrypt -r bob@example.org -o %s %s 2>>%s", h,
		tpath("gs-enc.der"), T.entity_path, tpath("gpgsm.log")), 0);
	wrap_der(tpath("gs-enc.der"), "enveloped-data", tpath("gs-enc.eml"));
	our_open_file(tpath("gs-enc.eml"), T.bob, 1, "gpgsm enveloped");

	assert_int_equal(trun("echo test | " GPGSM "--passphrase-fd 0 -u alice@example.org "
		"--sign -o %s %s 2>/dev/null", h, tpath("gs-op.der"), T.entity_path), 0);
	wrap_der(tpath("gs-op.der"), "signed-data", tpath("gs-op.eml"));
	our_open_file(tpath("gs-op.eml"), NULL, 1, "gpgsm opaque signed");

	assert_int_equal(trun("echo test | " GPGSM "--passphrase-fd 0 -u alice@example.org "
		"--detach-sign -o %s %s 2>/dev/null", h, tpath("gs-cl.der"), T.entity_path), 0);
	wrap_detached(tpath("gs-cl.der"), tpath("gs-cl.eml"));
	our_open_file(tpath("gs-cl.eml"), NULL, 1, "gpgsm detached signed");
}

/* ------------------------------------------------------- Bouncy Castle */

static void
bc_build(void)
{
	static int done;
	const char *src = getenv("SG_SRC");

	if (done)
		return;
	if (!tprog("javac") || !tprog("java"))
		fail_msg("JDK missing");
	if (trun("test -r /usr/share/java/bcpkix.jar && test -r /usr/share/java/bcprov.jar") != 0)
		fail_msg("Bouncy Castle missing: install libbcprov-java libbcpkix-java "
			"libbcutil-java libbcmail-java");
	assert_non_null(src);
	assert_int_equal(trun("javac -nowarn -cp " BC_CP " -d %s %s/tests/unit/smime/java/SmimeBc.java"
		" 2>/dev/null", tpath("bc"), src), 0);
	done = 1;
}

#define BC "java -cp " BC_CP ":%s SmimeBc "

static void
test_bc_reads_ours(void **state)
{
	static const struct {
		enum smime_cipher c;
		enum smime_key_transport kt;
	} enc[] = {
		{SMIME_CIPHER_AES256_CBC, SMIME_KT_PKCS1}, {SMIME_CIPHER_AES256_GCM, SMIME_KT_OAEP},
	};
	struct tkey *rcpts[2] = { T.bob, T.carol };

	bc_build();
	for (size_t i = 0; i < sizeof(enc) / sizeof(enc[0]); i++) {
		our_encrypt(rcpts, 2, enc[i].c, enc[i].kt, tpath("b-enc.eml"));
		mime_to_der(tpath("b-enc.eml"), tpath("b-enc.der"), 0);
		for (int k = 0; k < 2; k++) {
			if (trun(BC "decrypt %s test %s %s 2>/dev/null", tpath("bc"), rcpts[k]->p12_path,
				tpath("b-enc.der"), tpath("b-enc.out")) != 0)
				fail_msg("BC decrypt case %zu key %d failed", i, k);
			assert_file_is_entity(tpath("b-enc.out"), "BC decrypt");
			remove(tpath("b-enc.out"));
		}
	}
	our_sign(T.alice, SMIME_SIGN_OPAQUE, SMIME_DIGEST_SHA256, tpath("b-op.eml"));
	mime_to_der(tpath("b-op.eml"), tpath("b-op.der"), 0);
	if (trun(BC "verify %s %s 2>/dev/null", tpath("bc"), tenv_ca_path(), tpath("b-op.der")) != 0)
		fail_msg("BC verify opaque failed");
	assert_file_is_entity(tpath("b-op.der.content"), "BC opaque content");
	our_sign(T.carol, 0, SMIME_DIGEST_SHA256, tpath("b-cl.eml"));
	mime_to_der(tpath("b-cl.eml"), tpath("b-cl.der"), 1);
	if (trun(BC "verify %s %s %s 2>/dev/null", tpath("bc"), tenv_ca_path(), tpath("b-cl.der"),
		T.entity_path) != 0)
		fail_msg("BC verify detached (EC) failed");
}

static void
test_we_read_bc(void **state)
{
	bc_build();
	assert_int_equal(trun(BC "encrypt %s aes256gcm 1 %s %s", tpath("bc"), T.bob->cert_path,
		T.entity_path, tpath("bs-gcm.der")), 0);
	wrap_der(tpath("bs-gcm.der"), "authEnveloped-data", tpath("bs-gcm.eml"));
	our_open_file(tpath("bs-gcm.eml"), T.bob, 1, "BC GCM + OAEP");
	assert_int_equal(trun(BC "encrypt %s aes256cbc 0 %s %s", tpath("bc"), T.carol->cert_path,
		T.entity_path, tpath("bs-ec.der")), 0);
	wrap_der(tpath("bs-ec.der"), "enveloped-data", tpath("bs-ec.eml"));
	our_open_file(tpath("bs-ec.eml"), T.carol, 1, "BC ECDH");
	assert_int_equal(trun(BC "sign %s test %s %s 0", tpath("bc"), T.alice->p12_path,
		T.entity_path, tpath("bs-op.der")), 0);
	wrap_der(tpath("bs-op.der"), "signed-data", tpath("bs-op.eml"));
	our_open_file(tpath("bs-op.eml"), NULL, 1, "BC opaque signed");
	assert_int_equal(trun(BC "sign %s test %s %s 1", tpath("bc"), T.carol->p12_path,
		T.entity_path, tpath("bs-cl.der")), 0);
	wrap_detached(tpath("bs-cl.der"), tpath("bs-cl.eml"));
	our_open_file(tpath("bs-cl.eml"), NULL, 1, "BC detached EC signed");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_openssl_reads_ours),
		cmocka_unit_test(test_we_read_openssl),
		cmocka_unit_test(test_nss_reads_ours),
		cmocka_unit_test(test_we_read_nss),
		cmocka_unit_test(test_gpgsm_reads_ours),
		cmocka_unit_test(test_we_read_gpgsm),
		cmocka_unit_test(test_bc_reads_ours),
		cmocka_unit_test(test_we_read_bc),
	};

	g_mime_init();
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
