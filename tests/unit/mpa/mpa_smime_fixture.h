/* mpa_smime_fixture.h - the fixture and helpers shared by the S/MIME
 * pipeline tests (test_mpa_smime.c, test_mpa_smime_sig.c): a temp dir with a
 * spool, a store (SQLite file, or a database of store_test_pg's), policy,
 * PKI and key contexts and a test root; files and shell commands in the
 * temp dir; certificates into the store; policy properties; the outputs of
 * a run read back from outgoing/. Header-only (static inline: each test uses
 * a part). */
#ifndef SG_MPA_SMIME_FIXTURE_H
#define SG_MPA_SMIME_FIXTURE_H

#include <sys/wait.h>

#include <openssl/pem.h>

#include "mpa_test.h"
#include "mta/mta.h"
#include "pki/pki.h"
#include "pki/pki_key.h"
#include "policy/policy.h"
#include "../pki/pki_test.h"
#include "../store/store_test_pg.h"

#ifndef MAXOUT
#define MAXOUT 8
/* fixture_contexts_open - on f->db (and f->dir): relay domain example.com,
 * policy, PKI and key contexts, a config with data_dir = f->dir, and a test
 * root named cn with key k (stored as a root, exported as dir/root.pem) */
static inline void fixture_contexts_open(struct fixture *f, const char *cn, EVP_PKEY *k)
{
	struct sg_error err;

	assert_int_equal(mta_setting_set(f->db, "relay_domains", "example.com", &err), 0);
	f->pol = policy_new(f->db, NULL);
	f->pki = pki_open(f->db, &err);
	assert_non_null(f->pki);
	f->keys = pki_keys_open(f->pki, f->dir, &err);
	assert_non_null(f->keys);
	f->cfg = sg_config_defaults();
	free(f->cfg->data_dir);
	f->cfg->data_dir = sg_xstrdup(f->dir);
	f->root = tcert_make(&(struct tspec){.cn = cn, .ca = true,
		.nb_days = -2, .na_days = 3650, .key = k});
	add(f, f->root, PKI_ADD_ROOT);
	export(f, f->root, "root");
}

/* fixture_contexts_close - what fixture_contexts_open made */
static inline void fixture_contexts_close(struct fixture *f)
{
	tcert_free(&f->root);
	sg_config_free(&f->cfg);
	pki_keys_close(&f->keys);
	pki_close(&f->pki);
	policy_free(&f->pol);
}

#endif

struct fixture {
	char *dir;
	char *url;                 /* SQLite URL (test_mpa_smime.c) */
	struct store_test_db tdb;  /* a test database (test_mpa_smime_sig.c) */
	struct spool *sp;
	struct store *db;
	struct policy *pol;
	struct pki *pki;
	struct pki_keys *keys;
	struct sg_config *cfg;
	struct tcert *root;
};

struct out {
	struct spool_env env;
	char *body;
	size_t len;
};

struct outs {
	struct out v[MAXOUT];
	size_t n;
};

/* fpath - dir/name (static inline buffer, one of four slots) */
static const char *fpath(const struct fixture *f, const char *name)
{
	static char buf[4][4096];
	static int slot;

	slot = (slot + 1) % 4;
	snprintf(buf[slot], sizeof(buf[0]), "%s/%s", f->dir, name);
	return buf[slot];
}

static inline void write_file(const char *path, const void *data, size_t len)
{
	FILE *fp = fopen(path, "wb");

	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
}

static inline char *read_file(const char *path, size_t *len_r)
{
	FILE *fp = fopen(path, "rb");
	char *buf;
	long n;

	*len_r = 0;
	if (fp == NULL)
		return NULL;
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	buf = sg_xmalloc((size_t)n + 1);
	assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
	buf[n] = '\0';
	fclose(fp);
	*len_r = (size_t)n;
	return buf;
}

/* sh - run a shell command (output to dir/sh.log); its exit code */
static inline int sh(const struct fixture *f, const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	int n, rc;

	va_start(ap, fmt);
	n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	assert_true(n > 0 && (size_t)n < sizeof(cmd) - 200);
	snprintf(cmd + n, sizeof(cmd) - (size_t)n, " >>%s/sh.log 2>&1", f->dir);
	rc = system(cmd);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* export - cert and key of t as dir/<name>.pem, dir/<name>.key */
static inline void export(const struct fixture *f, const struct tcert *t, const char *name)
{
	char p[300];
	char *pem = tcert_pem(t);
	FILE *fp;

	snprintf(p, sizeof(p), "%s.pem", name);
	write_file(fpath(f, p), pem, strlen(pem));
	free(pem);
	snprintf(p, sizeof(p), "%s.key", name);
	fp = fopen(fpath(f, p), "w");
	assert_non_null(fp);
	assert_int_equal(PEM_write_PrivateKey(fp, t->k, NULL, NULL, 0, NULL, NULL), 1);
	fclose(fp);
}

/* add - t into the store (as root with PKI_ADD_ROOT) */
static inline void add(struct fixture *f, const struct tcert *t, unsigned flags)
{
	size_t len;
	unsigned char *der = tcert_der(t, &len);
	struct sg_error err;
	struct pki_cert *c = pki_cert_from_der(der, len, &err);

	assert_non_null(c);
	assert_true(pki_cert_add(f->pki, c, flags, &err) >= 0);
	pki_cert_free(&c);
	free(der);
}

/* add_key - t with its private key (PKCS#12 import) */
static inline void add_key(struct fixture *f, const struct tcert *t)
{
	size_t len;
	unsigned char *p12 = tp12_make(t, (const struct tcert *const *)&f->root, 1, "pw", &len);
	struct sg_error err;

	if (pki_key_import_p12(f->keys, p12, len, "pw", NULL, NULL, &err) < 0)
		fail_msg("p12 import: %s", err.msg);
	free(p12);
}

static inline void set(struct fixture *f, enum policy_kind kind, const char *name,
	const char *prop, const char *value)
{
	struct policy_change ch = {prop, value};
	struct sg_error err;

	if (policy_object_apply(f->pol, kind, name, &ch, 1, &err) < 0)
		fail_msg("set %s=%s: %s", prop, value, err.msg);
}

static inline void outs_free(struct outs *o)
{
	size_t i;

	for (i = 0; i < o->n; i++) {
		spool_env_free_fields(&o->v[i].env);
		free(o->v[i].body);
	}
	o->n = 0;
}

static inline void collect(struct fixture *f, struct outs *o)
{
	char path[4096];
	struct dirent *de;
	struct sg_error err;
	DIR *d;

	memset(o, 0, sizeof(*o));
	snprintf(path, sizeof(path), "%s/outgoing", f->dir);
	d = opendir(path);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		struct out *x;

		if (de->d_name[0] == '.')
			continue;
		assert_true(o->n < MAXOUT);
		x = &o->v[o->n++];
		if (spool_env_read(f->sp, SPOOL_Q_OUTGOING, de->d_name, &x->env, NULL, &err) < 0)
			fail_msg("env %s: %s", de->d_name, err.msg);
		x->body = mt_body(f->sp, SPOOL_Q_OUTGOING, de->d_name, &x->len);
		assert_non_null(x->body);
	}
	closedir(d);
}

/* clear_outgoing - remove the outputs of an earlier run */
static inline void clear_outgoing(struct fixture *f)
{
	char path[4096];
	struct dirent *de;
	DIR *d = opendir(fpath(f, "outgoing"));

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/outgoing/%s", f->dir, de->d_name);
		assert_int_equal(unlink(path), 0);
	}
	closedir(d);
}

/* fixture_contexts_open - on f->db (and f->dir): relay domain example.com,
 * policy, PKI and key contexts, a config with data_dir = f->dir, and a test
 * root named cn with key k (stored as a root, exported as dir/root.pem) */
static inline void fixture_contexts_open(struct fixture *f, const char *cn, EVP_PKEY *k)
{
	struct sg_error err;

	assert_int_equal(mta_setting_set(f->db, "relay_domains", "example.com", &err), 0);
	f->pol = policy_new(f->db, NULL);
	f->pki = pki_open(f->db, &err);
	assert_non_null(f->pki);
	f->keys = pki_keys_open(f->pki, f->dir, &err);
	assert_non_null(f->keys);
	f->cfg = sg_config_defaults();
	free(f->cfg->data_dir);
	f->cfg->data_dir = sg_xstrdup(f->dir);
	f->root = tcert_make(&(struct tspec){.cn = cn, .ca = true,
		.nb_days = -2, .na_days = 3650, .key = k});
	add(f, f->root, PKI_ADD_ROOT);
	export(f, f->root, "root");
}

/* fixture_contexts_close - what fixture_contexts_open made */
static inline void fixture_contexts_close(struct fixture *f)
{
	tcert_free(&f->root);
	sg_config_free(&f->cfg);
	pki_keys_close(&f->keys);
	pki_close(&f->pki);
	policy_free(&f->pol);
}

#endif
