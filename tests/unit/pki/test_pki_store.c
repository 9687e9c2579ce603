/*
 * test_pki_store.c - F-PKI-1/F-PKI-2: import formats (DER, PEM multi, p7b,
 * PKCS#12), thumbprints, duplicates, the e-mail index, search, delete refused
 * while selected, export (PEM/DER/p7b with chain), private keys encrypted at
 * rest under the KEK, key export, and the interop corpus PKCS#12 files.
 */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>

#include "pki_test.h"
#include "pki/pki_key.h"
#include "../store/store_test_pg.h"

/* parse_ok - pki_certs_parse must succeed with want certificates */
static void parse_ok(const void *data, size_t len, size_t want, struct pki_cert_list *l)
{
	struct sg_error err;

	memset(l, 0, sizeof(*l));
	if (pki_certs_parse(data, len, l, &err) < 0)
		fail_msg("parse: %s", err.msg);
	if (l->n != want)
		fail_msg("got %zu certificates want %zu", l->n, want);
}

/* parse_fail - pki_certs_parse must fail with code and msg containing needle */
static void parse_fail(const void *data, size_t len, enum sg_errc code, const char *needle)
{
	struct pki_cert_list l = {0};
	struct sg_error err;

	memset(&err, 0, sizeof(err));
	assert_int_equal(pki_certs_parse(data, len, &l, &err), -1);
	assert_int_equal(l.n, 0);
	if (err.code != code || strstr(err.msg, needle) == NULL)
		fail_msg("got %s \"%s\" want %s ~ \"%s\"", sg_errc_name(err.code), err.msg,
			sg_errc_name(code), needle);
}

static void test_import_der_and_thumbprint(void **state)
{
	struct tcert *t = tcert_make(&(struct tspec){.cn = "Der", .email = "der@x.org"});
	struct pki_cert_list l;
	size_t len;
	unsigned char *der = tcert_der(t, &len);

	(void)state;
	parse_ok(der, len, 1, &l);
	assert_string_equal(l.v[0]->thumbprint, t->thumb);
	assert_int_equal(strlen(l.v[0]->thumbprint), 128);
	assert_string_equal(l.v[0]->subject, "emailAddress=der@x.org,CN=Der");
	pki_cert_list_free(&l);
	free(der);
	tcert_free(&t);
}

static void test_import_pem_multi(void **state)
{
	struct tcert *a = tcert_make(&(struct tspec){.cn = "A"});
	struct tcert *b = tcert_make(&(struct tspec){.cn = "B", .issuer = a});
	struct tcert *c = tcert_make(&(struct tspec){.cn = "C", .issuer = a});
	char *pa = tcert_pem(a), *pb = tcert_pem(b), *pc = tcert_pem(c);
	char *all = sg_xasprintf("Bag Attributes\n friendlyName: x\n%s\nsome text\n"
		"-----BEGIN X509 CRL-----\nMAA=\n-----END X509 CRL-----\n%s%s", pa, pb, pc);
	struct pki_cert_list l;

	(void)state;
	parse_ok(all, strlen(all), 3, &l);
	assert_string_equal(l.v[0]->thumbprint, a->thumb);
	assert_string_equal(l.v[1]->thumbprint, b->thumb);
	assert_string_equal(l.v[2]->thumbprint, c->thumb);
	pki_cert_list_free(&l);
	free(all);
	free(pa);
	free(pb);
	free(pc);
	tcert_free(&a);
	tcert_free(&b);
	tcert_free(&c);
}

/* p7b_by_openssl - a .p7b built by the openssl CLI (independent of us) */
static unsigned char *p7b_by_openssl(struct tenv *e, const char *pem, bool der_out,
	size_t *len_r)
{
	char in[512], out[512];
	char *argv[] = {"openssl", "crl2pkcs7", "-nocrl", "-certfile", in, "-outform",
		der_out ? "DER" : "PEM", "-out", out, NULL};
	char *data = NULL;
	struct sg_error err;

	snprintf(in, sizeof(in), "%s", tenv_write(e, "in.pem", pem, strlen(pem)));
	snprintf(out, sizeof(out), "%s/out.p7b", e->dir);
	assert_int_equal(run_cmd(argv, NULL, 0), 0);
	if (sg_file_read(out, 1 << 20, &data, len_r, &err) < 0)
		fail_msg("%s", err.msg);
	return (unsigned char *)data;
}

static void test_import_p7b(void **state)
{
	struct tenv *e = *state;
	struct tcert *a = tcert_make(&(struct tspec){.cn = "P7 A"});
	struct tcert *b = tcert_make(&(struct tspec){.cn = "P7 B", .issuer = a});
	char *pa = tcert_pem(a), *pb = tcert_pem(b);
	char *both = sg_xasprintf("%s%s", pa, pb);
	struct pki_cert_list l;
	unsigned char *p7;
	size_t len;

	p7 = p7b_by_openssl(e, both, true, &len);
	parse_ok(p7, len, 2, &l);
	assert_true(strcmp(l.v[0]->thumbprint, a->thumb) == 0 ||
		strcmp(l.v[1]->thumbprint, a->thumb) == 0);
	pki_cert_list_free(&l);
	free(p7);
	p7 = p7b_by_openssl(e, both, false, &len);
	parse_ok(p7, len, 2, &l);
	pki_cert_list_free(&l);
	free(p7);
	free(both);
	free(pa);
	free(pb);
	tcert_free(&a);
	tcert_free(&b);
}

static void test_import_errors(void **state)
{
	struct tcert *t = tcert_make(&(struct tspec){.cn = "Trunc"});
	size_t len;
	unsigned char *der = tcert_der(t, &len);
	char *pem = tcert_pem(t);
	char *bad;

	(void)state;
	parse_fail(der, len - 10, SG_E_PARSE, "not a DER certificate");
	parse_fail("hello world, no certificate here\n", 33, SG_E_PARSE, "not a DER");
	parse_fail("-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n", 58,
		SG_E_PARSE, "no certificate in the PEM data");
	/* corrupt base64 inside a CERTIFICATE block */
	bad = sg_xstrdup(pem);
	memcpy(bad + 40, "!!!!", 4);
	parse_fail(bad, strlen(bad), SG_E_PARSE, "PEM block 1");
	free(bad);
	/* valid base64 of garbage DER */
	parse_fail("-----BEGIN CERTIFICATE-----\nAAECAwQF\n-----END CERTIFICATE-----\n", 63,
		SG_E_PARSE, "PEM block 1: certificate");
	parse_fail("", 0, SG_E_PARSE, "empty");
	free(pem);
	free(der);
	tcert_free(&t);
}

static void test_p12_given_to_cert_import(void **state)
{
	struct tcert *t = tcert_make(&(struct tspec){.cn = "P12"});
	size_t len;
	unsigned char *p12 = tp12_make(t, NULL, 0, "pw", &len);

	(void)state;
	parse_fail(p12, len, SG_E_PARSE, "key import");
	free(p12);
	tcert_free(&t);
}

static void test_duplicates_and_roots(void **state)
{
	struct tenv *e = *state;
	struct tcert *t = tcert_make(&(struct tspec){.cn = "Dup", .ca = true});
	struct pki_cert *c = NULL;
	struct sg_error err;

	assert_int_equal(tenv_add(e, t, 0), 1);
	assert_int_equal(tenv_add(e, t, 0), 0);
	assert_int_equal(pki_cert_get(e->pki, t->thumb, &c, &err), 1);
	assert_false(c->is_root);
	pki_cert_free(&c);
	/* importing as a root moves it into the roots store */
	assert_int_equal(tenv_add(e, t, PKI_ADD_ROOT), 1);
	assert_int_equal(tenv_add(e, t, PKI_ADD_ROOT), 0);
	/* upper-case thumbprint finds it */
	{
		char up[PKI_THUMBPRINT_LEN + 1];
		size_t i;

		for (i = 0; i <= PKI_THUMBPRINT_LEN; i++)
			up[i] = (char)toupper((unsigned char)t->thumb[i]);
		assert_int_equal(pki_cert_get(e->pki, up, &c, &err), 1);
	}
	assert_true(c->is_root);
	pki_cert_free(&c);
	tcert_free(&t);
}

static int count_cb(struct pki_cert *c, void *arg, struct sg_error *err)
{
	(void)c;
	(void)err;
	(*(int *)arg)++;
	return 0;
}

static int search_count(struct tenv *e, const struct pki_cert_query *q)
{
	struct sg_error err;
	int n = 0;

	if (pki_cert_search(e->pki, q, count_cb, &n, &err) < 0)
		fail_msg("search: %s", err.msg);
	return n;
}

static void test_email_index(void **state)
{
	struct tenv *e = *state;
	struct tcert *m = tcert_make(&(struct tspec){.cn = "Multi", .email = "Boss@Example.COM",
		.san = "email:boss@example.com,email:Second@Example.org,DNS:x.example"});
	struct tcert *o = tcert_make(&(struct tspec){.cn = "Other",
		.san = "email:second@example.org"});
	char thumbs[4][PKI_THUMBPRINT_LEN + 1];
	struct pki_cert_list l;
	struct sg_error err;
	size_t len;
	unsigned char *der = tcert_der(m, &len);

	parse_ok(der, len, 1, &l);
	assert_int_equal(l.v[0]->n_emails, 2);
	assert_string_equal(l.v[0]->emails[0], "boss@example.com");
	assert_string_equal(l.v[0]->emails[1], "second@example.org");
	pki_cert_list_free(&l);
	free(der);
	tenv_add(e, m, 0);
	tenv_add(e, o, 0);
	assert_int_equal(pki_cert_find_email(e->pki, "BOSS@example.com", thumbs, 4, &err), 1);
	assert_string_equal(thumbs[0], m->thumb);
	assert_int_equal(pki_cert_find_email(e->pki, "second@EXAMPLE.org", thumbs, 4, &err),
		2);
	assert_int_equal(pki_cert_find_email(e->pki, "nobody@example.org", thumbs, 4, &err),
		0);
	{
		struct pki_cert_query q = PKI_CERT_QUERY_INIT;

		q.email = "Second@example.org";
		assert_int_equal(search_count(e, &q), 2);
		q.email = NULL;
		q.subject = "mult";
		assert_int_equal(search_count(e, &q), 1);
		q.subject = NULL;
		q.has_key = 1;
		assert_int_equal(search_count(e, &q), 0);
		q.has_key = -1;
		q.limit = 1;
		q.offset = 1;
		assert_int_equal(search_count(e, &q), 1);
		q.offset = 2;
		assert_int_equal(search_count(e, &q), 0);
		q.limit = 0;
		q.offset = 0;
		q.valid_at = sg_now() + 400 * DAY;
		assert_int_equal(search_count(e, &q), 0);
	}
	tcert_free(&m);
	tcert_free(&o);
}

static void test_delete_in_use(void **state)
{
	struct tenv *e = *state;
	struct tcert *t = tcert_make(&(struct tspec){.cn = "Used", .email = "u@x.org"});
	struct pki_owner dom = {PKI_OWNER_DOMAIN, "x.org"};
	struct pki_cert *c = NULL;
	struct sg_error err;

	tenv_add(e, t, 0);
	assert_int_equal(pki_select_add(e->pki, &dom, PKI_SEL_ENCRYPT, t->thumb, &err), 1);
	assert_int_equal(pki_cert_delete(e->pki, t->thumb, &err), -1);
	assert_int_equal(err.code, SG_E_POLICY);
	assert_non_null(strstr(err.msg, "in use by domain x.org (encrypt)"));
	assert_int_equal(pki_select_remove(e->pki, &dom, PKI_SEL_ENCRYPT, t->thumb, &err), 1);
	assert_int_equal(pki_cert_delete(e->pki, t->thumb, &err), 0);
	assert_int_equal(pki_cert_get(e->pki, t->thumb, &c, &err), 0);
	assert_int_equal(pki_cert_delete(e->pki, t->thumb, &err), -1);
	assert_int_equal(err.code, SG_E_NOTFOUND);
	tcert_free(&t);
}

/* pem_count - certificates in PEM text (by an independent reader) */
static int pem_count(const char *s, size_t len)
{
	BIO *b = BIO_new_mem_buf(s, (int)len);
	X509 *x;
	int n = 0;

	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		n++;
		X509_free(x);
	}
	ERR_clear_error();
	BIO_free(b);
	return n;
}

static void test_export(void **state)
{
	struct tenv *e = *state;
	struct tcert *root = tcert_make(&(struct tspec){.cn = "Exp Root", .ca = true});
	struct tcert *mid = tcert_make(&(struct tspec){.cn = "Exp Mid", .ca = true,
		.issuer = root});
	struct tcert *leaf = tcert_make(&(struct tspec){.cn = "Exp Leaf", .issuer = mid});
	struct tcert *two = tcert_make(&(struct tspec){.cn = "Exp Two", .issuer = mid});
	const char *one[] = {leaf->thumb}, *both[] = {leaf->thumb, two->thumb};
	struct pki_cert_list l;
	struct sg_error err;
	struct sg_buf b;

	tenv_add(e, root, PKI_ADD_ROOT);
	tenv_add(e, mid, 0);
	tenv_add(e, leaf, 0);
	tenv_add(e, two, 0);
	sg_buf_init(&b, 1 << 20);
	assert_int_equal(pki_certs_export(e->pki, one, 1, PKI_FMT_PEM, 0, &b, &err), 0);
	assert_int_equal(pem_count(b.data, b.len), 1);
	sg_buf_reset(&b);
	assert_int_equal(pki_certs_export(e->pki, both, 2, PKI_FMT_PEM, PKI_EXPORT_CHAIN, &b,
		&err), 0);
	assert_int_equal(pem_count(b.data, b.len), 4);  /* leaf, two, mid, root once */
	sg_buf_reset(&b);
	assert_int_equal(pki_certs_export(e->pki, one, 1, PKI_FMT_DER, 0, &b, &err), 0);
	parse_ok(b.data, b.len, 1, &l);
	assert_string_equal(l.v[0]->thumbprint, leaf->thumb);
	pki_cert_list_free(&l);
	sg_buf_reset(&b);
	assert_int_equal(pki_certs_export(e->pki, one, 1, PKI_FMT_DER, PKI_EXPORT_CHAIN, &b,
		&err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
	sg_buf_reset(&b);
	assert_int_equal(pki_certs_export(e->pki, one, 1, PKI_FMT_P7B, PKI_EXPORT_CHAIN, &b,
		&err), 0);
	{
		/* the openssl CLI reads our .p7b */
		char out[8192];
		char *argv[] = {"openssl", "pkcs7", "-inform", "DER", "-print_certs", "-noout",
			"-in", NULL, NULL};

		argv[7] = (char *)tenv_write(e, "x.p7b", b.data, b.len);
		assert_int_equal(run_cmd(argv, out, sizeof(out)), 0);
		assert_non_null(strstr(out, "subject=CN = Exp Leaf"));
		assert_non_null(strstr(out, "subject=CN = Exp Root"));
	}
	parse_ok(b.data, b.len, 3, &l);
	pki_cert_list_free(&l);
	{
		char missing[PKI_THUMBPRINT_LEN + 1];
		const char *m[] = {missing};

		memset(missing, 'a', PKI_THUMBPRINT_LEN);
		missing[PKI_THUMBPRINT_LEN] = '\0';
		assert_int_equal(pki_certs_export(e->pki, m, 1, PKI_FMT_PEM, 0, &b, &err), -1);
		assert_int_equal(err.code, SG_E_NOTFOUND);
	}
	sg_buf_deinit(&b);
	tcert_free(&root);
	tcert_free(&mid);
	tcert_free(&leaf);
	tcert_free(&two);
}

struct imp {
	int n;
	int states[8];
	bool keys[8];
	char thumbs[8][PKI_THUMBPRINT_LEN + 1];
};

static int imp_cb(const struct pki_cert *c, enum pki_import_state st, bool has_key,
	void *arg, struct sg_error *err)
{
	struct imp *i = arg;

	(void)err;
	if (i->n < 8) {
		i->states[i->n] = (int)st;
		i->keys[i->n] = has_key;
		sg_strlcpy(i->thumbs[i->n], c->thumbprint, sizeof(i->thumbs[0]));
	}
	i->n++;
	return 0;
}

static void test_p12_keys(void **state)
{
	struct tenv *e = *state;
	struct tcert *ca = tcert_make(&(struct tspec){.cn = "Key CA", .ca = true});
	struct tcert *leaf = tcert_make(&(struct tspec){.cn = "Key Leaf", .issuer = ca,
		.email = "k@x.org", .rsa = true});
	const struct tcert *cas[] = {ca};
	struct pki_keys *keys;
	struct imp imp = {0};
	struct sg_error err;
	struct stat sb;
	char path[600];
	size_t len;
	unsigned char *p12 = tp12_make(leaf, cas, 1, "secret", &len);

	keys = pki_keys_open(e->pki, e->dir, &err);
	if (keys == NULL)
		fail_msg("%s", err.msg);
	snprintf(path, sizeof(path), "%s/pki.kek", e->dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(sb.st_size, 32);
	/* wrong password: clear error, nothing stored */
	assert_int_equal(pki_key_import_p12(keys, p12, len, "wrong", imp_cb, &imp, &err), -1);
	assert_int_equal(err.code, SG_E_CRYPTO);
	assert_non_null(strstr(err.msg, "wrong password"));
	assert_int_equal(imp.n, 0);
	assert_int_equal(pki_key_import_p12(keys, p12, len, "secret", imp_cb, &imp, &err), 0);
	assert_int_equal(imp.n, 2);
	assert_string_equal(imp.thumbs[0], leaf->thumb);
	assert_int_equal(imp.states[0], PKI_IMPORTED);
	assert_true(imp.keys[0]);
	assert_string_equal(imp.thumbs[1], ca->thumb);
	assert_false(imp.keys[1]);
	assert_int_equal(pki_key_has(keys, leaf->thumb, &err), 1);
	assert_int_equal(pki_key_has(keys, ca->thumb, &err), 0);
	/* again: exists */
	imp.n = 0;
	assert_int_equal(pki_key_import_p12(keys, p12, len, "secret", imp_cb, &imp, &err), 0);
	assert_int_equal(imp.states[0], PKI_IMPORT_EXISTS);
	assert_int_equal(imp.states[1], PKI_IMPORT_EXISTS);
	{
		/* the key is encrypted at rest: its PKCS#8 DER is not in the row */
		struct store_stmt *st = store_prepare(e->db, "SELECT enc FROM pki_key", &err);
		PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(leaf->k);
		unsigned char *kd = NULL;
		int kl = i2d_PKCS8_PRIV_KEY_INFO(p8, &kd);
		const void *blob;
		size_t blen;

		assert_int_equal(store_stmt_step(st, &err), 1);
		blob = store_col_blob(st, 0, &blen);
		assert_true(blen > (size_t)kl);
		assert_null(memmem(blob, blen, kd + 40, 64));
		store_stmt_free(&st);
		OPENSSL_free(kd);
		PKCS8_PRIV_KEY_INFO_free(p8);
	}
	{
		/* signing goes through the narrow API and verifies with the cert */
		struct sg_buf sig;
		EVP_MD_CTX *md = EVP_MD_CTX_new();

		sg_buf_init(&sig, 4096);
		assert_int_equal(pki_key_sign(keys, leaf->thumb, "SHA256", "abc", 3, &sig, &err),
			0);
		assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL,
			X509_get0_pubkey(leaf->x)), 1);
		assert_int_equal(EVP_DigestVerify(md, (unsigned char *)sig.data, sig.len,
			(const unsigned char *)"abc", 3), 1);
		EVP_MD_CTX_free(md);
		sg_buf_deinit(&sig);
		assert_int_equal(pki_key_sign(keys, ca->thumb, "SHA256", "abc", 3, &sig, &err),
			-1);
		assert_int_equal(err.code, SG_E_NOTFOUND);
	}
	{
		/* export (AES and legacy) and read back with the openssl CLI */
		const char *one[] = {leaf->thumb};
		unsigned flags[] = {PKI_P12_CHAIN, PKI_P12_LEGACY};
		size_t i;

		for (i = 0; i < 2; i++) {
			struct sg_buf out;
			char o[8192];
			char *argv[] = {"openssl", "pkcs12", "-in", NULL, "-passin", "pass:exp",
				"-nodes", i == 1 ? "-legacy" : "-nokeys", NULL};

			sg_buf_init(&out, 1 << 20);
			assert_int_equal(pki_key_export_p12(keys, one, 1, "exp", flags[i], &out,
				&err), 0);
			argv[3] = (char *)tenv_write(e, "out.p12", out.data, out.len);
			assert_int_equal(run_cmd(argv, o, sizeof(o)), 0);
			assert_non_null(strstr(o, "subject=CN = Key Leaf"));
			if (i == 0)
				assert_non_null(strstr(o, "subject=CN = Key CA"));
			else
				assert_non_null(strstr(o, "PRIVATE KEY"));
			sg_buf_deinit(&out);
		}
		assert_int_equal(pki_key_export_p12(keys, (const char *[]){ca->thumb}, 1, "x", 0,
			&(struct sg_buf){0}, &err), -1);
		assert_int_equal(err.code, SG_E_NOTFOUND);
	}
	pki_keys_close(&keys);
	/* a KEK readable by others is refused */
	assert_int_equal(chmod(path, 0644), 0);
	assert_null(pki_keys_open(e->pki, e->dir, &err));
	assert_int_equal(err.code, SG_E_CONFIG);
	free(p12);
	tcert_free(&ca);
	tcert_free(&leaf);
}

static void test_p12_wrong_kek(void **state)
{
	struct tenv *e = *state;
	struct tcert *leaf = tcert_make(&(struct tspec){.cn = "Kek"});
	struct pki_keys *keys;
	struct sg_error err;
	struct sg_buf sig;
	char path[600];
	size_t len;
	unsigned char *p12 = tp12_make(leaf, NULL, 0, "", &len);

	keys = pki_keys_open(e->pki, e->dir, &err);
	assert_non_null(keys);
	/* empty password */
	assert_int_equal(pki_key_import_p12(keys, p12, len, "", NULL, NULL, &err), 0);
	pki_keys_close(&keys);
	/* replace the KEK: the stored key no longer opens (authenticated) */
	snprintf(path, sizeof(path), "%s/pki.kek", e->dir);
	assert_int_equal(sg_file_write_atomic(path, "0123456789abcdef0123456789abcdef", 32,
		0600, &err), 0);
	keys = pki_keys_open(e->pki, e->dir, &err);
	assert_non_null(keys);
	sg_buf_init(&sig, 4096);
	assert_int_equal(pki_key_sign(keys, leaf->thumb, "SHA256", "abc", 3, &sig, &err), -1);
	assert_int_equal(err.code, SG_E_CRYPTO);
	assert_non_null(strstr(err.msg, "cannot decrypt"));
	sg_buf_deinit(&sig);
	pki_keys_close(&keys);
	free(p12);
	tcert_free(&leaf);
}

/* interop corpus PKCS#12 files, by path (MANIFEST.md passwords) */
static const struct {
	const char *path;
	const char *password;
	int want;               /* 0 imports with a key, -1 fails */
	enum sg_errc code;
} corpus[] = {
	{"02-thunderbird-nss/smime/Alice.p12", "nss", 0, 0},
	{"02-thunderbird-nss/smime/Alice-ec.p12", "nss", 0, 0},
	{"02-thunderbird-nss/smime/Bob.p12", "nss", 0, 0},
	{"02-thunderbird-nss/smime-interop/Fran-ec.p12", "nss", 0, 0},
	{"03-real-clients/thunderbird52-simplejavamail/smime_test_user.p12", "letmein", 0, 0},
	{"04-gnupg/p12/ov-user.p12", "start", 0, 0},
	{"04-gnupg/p12/t6752-ov-user-ff.p12", "start", 0, 0},
	{"04-gnupg/p12/opensc-test.p12", "password", 0, 0},
	{"04-gnupg/p12/nistp256-openssl-self-signed.p12", "abc", 0, 0},
	{"04-gnupg/p12/credential_private_encrypted_AES256.p12", "qeFGds84/Sf0eKkJwcp6", 0, 0},
	{"07-lamps-header-protection/bob.p12", "bob", 0, 0},
	{"07-lamps-header-protection/bob.p12.pem", "bob", 0, 0},
	{"02-thunderbird-nss/smime/Alice.p12", "wrong", -1, SG_E_CRYPTO},
	{"03-real-clients/thunderbird52-simplejavamail/smime_test_user.p12", "nss", -1,
		SG_E_CRYPTO},
};

static int key_count(const struct pki_cert *c, enum pki_import_state st, bool has_key,
	void *arg, struct sg_error *err)
{
	(void)c;
	(void)st;
	(void)err;
	if (has_key)
		(*(int *)arg)++;
	return 0;
}

static void test_interop_p12(void **state)
{
	struct tenv *e = *state;
	const char *src = getenv("SG_SRC");
	struct pki_keys *keys = pki_keys_open(e->pki, e->dir, &(struct sg_error){0});
	size_t i;

	assert_non_null(src);
	assert_non_null(keys);
	for (i = 0; i < sizeof(corpus) / sizeof(corpus[0]); i++) {
		char path[1024], *data = NULL;
		struct sg_error err;
		size_t len = 0;
		int nkeys = 0, r;

		snprintf(path, sizeof(path), "%s/../shared/interop-corpus/%s", src,
			corpus[i].path);
		if (sg_file_read(path, 1 << 20, &data, &len, &err) < 0)
			fail_msg("%s", err.msg);
		r = pki_key_import_p12(keys, data, len, corpus[i].password, key_count, &nkeys,
			&err);
		if (r != corpus[i].want)
			fail_msg("%s: got %d want %d (%s)", corpus[i].path, r, corpus[i].want,
				r < 0 ? err.msg : "");
		if (r == 0 && nkeys != 1)
			fail_msg("%s: got %d keys want 1", corpus[i].path, nkeys);
		if (r < 0 && err.code != corpus[i].code)
			fail_msg("%s: got %s want %s", corpus[i].path, sg_errc_name(err.code),
				sg_errc_name(corpus[i].code));
		free(data);
	}
	pki_keys_close(&keys);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_import_der_and_thumbprint),
		cmocka_unit_test(test_import_pem_multi),
		cmocka_unit_test_setup_teardown(test_import_p7b, tenv_setup, tenv_teardown),
		cmocka_unit_test(test_import_errors),
		cmocka_unit_test(test_p12_given_to_cert_import),
		cmocka_unit_test_setup_teardown(test_duplicates_and_roots, tenv_setup,
			tenv_teardown),
		cmocka_unit_test_setup_teardown(test_email_index, tenv_setup, tenv_teardown),
		cmocka_unit_test_setup_teardown(test_delete_in_use, tenv_setup, tenv_teardown),
		cmocka_unit_test_setup_teardown(test_export, tenv_setup, tenv_teardown),
		cmocka_unit_test_setup_teardown(test_p12_keys, tenv_setup, tenv_teardown),
		cmocka_unit_test_setup_teardown(test_p12_wrong_kek, tenv_setup, tenv_teardown),
		cmocka_unit_test_setup_teardown(test_interop_p12, tenv_setup, tenv_teardown),
	};

	return cmocka_run_group_tests(tests, tenv_group_setup, tenv_group_teardown);
}
