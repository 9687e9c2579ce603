/*
 * cli_pki.c - `sealgate cert|key|crl|ctl ...` and the certificate selection
 * commands of users, domains and the global settings (SPEC §13, F-PKI-1..6).
 * Runs in the administrator's shell, single-threaded, daemon running or not:
 * everything goes through the pki module over the database; private keys only
 * through pki_key.h. Listings accept --json; errors go to stderr, exit != 0.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "ca/ca.h"
#include "pki/pki.h"
#include "pki/pki_key.h"

#define CLI_PKI_FILE_MAX PKI_IMPORT_MAX

/* opened - the pki context over the CLI's store; NULL after printing why */
static struct pki *opened(struct cli_ctx *ctx)
{
	struct store *db = cli_db(ctx);
	struct sg_error err;
	struct pki *pki;

	if (db == NULL)
		return NULL;
	pki = pki_open(db, &err);
	if (pki == NULL)
		cli_error("pki: %s", err.msg);
	return pki;
}

/* has_flag - remove "--name" from argv if present */
static bool has_flag(int *argc, char **argv, const char *name)
{
	int i;

	for (i = 1; i < *argc; i++) {
		if (strcmp(argv[i], name) == 0) {
			memmove(&argv[i], &argv[i + 1], (size_t)(*argc - i) * sizeof(char *));
			(*argc)--;
			return true;
		}
	}
	return false;
}

/* opt_value - remove "--name VALUE" from argv; the value or NULL (*bad on a
 * missing value) */
static const char *opt_value(int *argc, char **argv, const char *name, bool *bad)
{
	const char *v;
	int i;

	for (i = 1; i < *argc; i++) {
		if (strcmp(argv[i], name) != 0)
			continue;
		if (i + 1 >= *argc) {
			*bad = true;
			return NULL;
		}
		v = argv[i + 1];
		memmove(&argv[i], &argv[i + 2], (size_t)(*argc - i - 1) * sizeof(char *));
		*argc -= 2;
		return v;
	}
	return NULL;
}

/* no_options - fail on any leftover "--x" argument */
static int no_options(int argc, char **argv, const char *group, const char *name)
{
	int i;

	for (i = 1; i < argc; i++) {
		if (strncmp(argv[i], "--", 2) == 0) {
			cli_error("unknown option %s", argv[i]);
			return cli_usage(group, name);
		}
	}
	return 0;
}

static char *read_file(const char *path, size_t *len_r)
{
	struct sg_error err;
	char *data = NULL;

	if (sg_file_read(path, CLI_PKI_FILE_MAX, &data, len_r, &err) < 0) {
		cli_error("%s", err.msg);
		return NULL;
	}
	return data;
}

static char *read_password(const char *path)
{
	struct sg_error err;
	char *pw;

	if (path == NULL) {
		cli_error("--password-file is required (passwords are never arguments)");
		return NULL;
	}
	pw = cli_read_secret_file(path, &err);
	if (pw == NULL)
		cli_error("password file: %s", err.msg);
	return pw;
}

static void free_password(char *pw)
{
	if (pw != NULL) {
		memset(pw, 0, strlen(pw));
		free(pw);
	}
}

/* ------------------------------------------------------------ cert output */

static json_t *cert_json(const struct pki_cert *c, const struct pki_verdict *v)
{
	char nb[32], na[32];
	json_t *o = json_object(), *emails = json_array();
	size_t i;

	for (i = 0; i < c->n_emails; i++)
		json_array_append_new(emails, json_string(c->emails[i]));
	json_object_set_new(o, "thumbprint", json_string(c->thumbprint));
	json_object_set_new(o, "subject", json_string(c->subject));
	json_object_set_new(o, "issuer", json_string(c->issuer));
	json_object_set_new(o, "serial", json_string(c->serial));
	json_object_set_new(o, "not_before", json_string(sg_time_iso8601(c->not_before, nb,
		sizeof(nb))));
	json_object_set_new(o, "not_after", json_string(sg_time_iso8601(c->not_after, na,
		sizeof(na))));
	json_object_set_new(o, "emails", emails);
	json_object_set_new(o, "has_key", json_boolean(c->has_key));
	json_object_set_new(o, "is_root", json_boolean(c->is_root));
	json_object_set_new(o, "is_ca", json_boolean(c->is_ca));
	json_object_set_new(o, "valid", json_boolean(v->is_valid));
	json_object_set_new(o, "reason", json_string(v->reason));
	json_object_set_new(o, "warning", json_string(v->warning));
	return o;
}

static void cert_text(const struct pki_cert *c, const struct pki_verdict *v, bool full)
{
	char nb[32], na[32];
	size_t i;

	if (!full) {
		printf("%s %s%s%s %s\n", c->thumbprint, c->is_root ? "root " : "",
			c->has_key ? "key " : "", v->is_valid ? "valid" : "INVALID", c->subject);
		return;
	}
	printf("thumbprint: %s\nsubject:    %s\nissuer:     %s\nserial:     %s\n"
		"not before: %s\nnot after:  %s\n", c->thumbprint, c->subject, c->issuer,
		c->serial, sg_time_iso8601(c->not_before, nb, sizeof(nb)),
		sg_time_iso8601(c->not_after, na, sizeof(na)));
	for (i = 0; i < c->n_emails; i++)
		printf("email:      %s\n", c->emails[i]);
	printf("has key:    %s\nroot:       %s\nCA:         %s\nvalid:      %s%s%s\n",
		c->has_key ? "yes" : "no", c->is_root ? "yes" : "no", c->is_ca ? "yes" : "no",
		v->is_valid ? "yes" : "no", v->is_valid ? "" : " - ", v->reason);
	if (v->warning[0] != '\0')
		printf("warning:    %s\n", v->warning);
}

struct list_arg {
	struct pki *pki;
	json_t *arr;
	bool json;
};

static int list_cb(struct pki_cert *c, void *arg, struct sg_error *err)
{
	struct list_arg *la = arg;
	struct pki_verdict v;

	if (pki_cert_verify(la->pki, c, PKI_PURPOSE_ANY, 0, 0, &v, err) < 0)
		return -1;
	if (la->json)
		json_array_append_new(la->arr, cert_json(c, &v));
	else
		cert_text(c, &v, false);
	return 0;
}

static int print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_ENSURE_ASCII);

	json_decref(j);
	if (s == NULL)
		return cli_error("out of memory");
	puts(s);
	free(s);
	return 0;
}

/* ------------------------------------------------------------ cert cmds */

static int cli_cert_import(struct cli_ctx *ctx, int argc, char **argv)
{
	bool roots = has_flag(&argc, argv, "--roots");
	struct pki_cert_list l = {0};
	struct sg_error err;
	struct pki *pki;
	char *data = NULL;
	size_t len = 0, i;
	int rc = 1, r;

	if (argc != 2 || no_options(argc, argv, "cert", "import") != 0)
		return cli_usage("cert", "import");
	data = read_file(argv[1], &len);
	if (data == NULL)
		return 1;
	if (pki_certs_parse(data, len, &l, &err) < 0) {
		cli_error("%s: %s", argv[1], err.msg);
		goto out;
	}
	pki = opened(ctx);
	if (pki == NULL)
		goto out;
	if (pki_batch_begin(pki, &err) < 0) {
		cli_error("%s", err.msg);
		pki_close(&pki);
		goto out;
	}
	r = 0;
	for (i = 0; r >= 0 && i < l.n; i++) {
		r = pki_cert_add(pki, l.v[i], roots ? PKI_ADD_ROOT : 0, &err);
		if (r >= 0)
			printf("%s %s\n", r == 1 ? "imported" : "exists", l.v[i]->thumbprint);
	}
	if (pki_batch_end(pki, r < 0 ? -1 : 0, &err) < 0)
		cli_error("%s: %s", argv[1], err.msg);
	else
		rc = 0;
	pki_close(&pki);
out:
	pki_cert_list_free(&l);
	free(data);
	return rc;
}

static int cli_cert_list(struct cli_ctx *ctx, int argc, char **argv)
{
	struct pki_cert_query q = PKI_CERT_QUERY_INIT;
	struct list_arg la = {NULL, NULL, ctx->json};
	const char *limit, *offset;
	struct sg_error err;
	bool bad = false;
	uint64_t n;
	int rc = 1;

	q.email = opt_value(&argc, argv, "--email", &bad);
	q.subject = opt_value(&argc, argv, "--subject", &bad);
	q.issuer = opt_value(&argc, argv, "--issuer", &bad);
	q.serial = opt_value(&argc, argv, "--serial", &bad);
	limit = opt_value(&argc, argv, "--limit", &bad);
	offset = opt_value(&argc, argv, "--offset", &bad);
	q.roots = has_flag(&argc, argv, "--roots") ? 1 : 0;
	if (has_flag(&argc, argv, "--all"))
		q.roots = -1;
	if (has_flag(&argc, argv, "--has-key"))
		q.has_key = 1;
	if (has_flag(&argc, argv, "--valid-now"))
		q.valid_at = sg_now();
	if (bad || argc != 1 || no_options(argc, argv, "cert", "list") != 0)
		return cli_usage("cert", "list");
	if (limit != NULL) {
		if (sg_parse_u64(limit, 1000000, &n) < 0)
			return cli_error("bad --limit %s", limit);
		q.limit = (size_t)n;
	}
	if (offset != NULL) {
		if (sg_parse_u64(offset, UINT32_MAX, &n) < 0)
			return cli_error("bad --offset %s", offset);
		q.offset = (size_t)n;
		if (q.limit == 0)
			q.limit = 1000000;
	}
	la.pki = opened(ctx);
	if (la.pki == NULL)
		return 1;
	la.arr = json_array();
	if (pki_cert_search(la.pki, &q, list_cb, &la, &err) < 0)
		cli_error("%s", err.msg);
	else
		rc = 0;
	if (rc == 0 && ctx->json)
		rc = print_json(json_incref(la.arr));
	json_decref(la.arr);
	pki_close(&la.pki);
	return rc;
}

static int cli_cert_show(struct cli_ctx *ctx, int argc, char **argv)
{
	struct pki_cert *c = NULL;
	struct pki_verdict v;
	struct sg_error err;
	struct pki *pki;
	int r, rc = 1;

	if (argc != 2 || no_options(argc, argv, "cert", "show") != 0)
		return cli_usage("cert", "show");
	pki = opened(ctx);
	if (pki == NULL)
		return 1;
	r = pki_cert_get(pki, argv[1], &c, &err);
	if (r <= 0) {
		cli_error("%s", r == 0 ? "certificate not found" : err.msg);
		goto out;
	}
	if (pki_cert_verify(pki, c, PKI_PURPOSE_ANY, 0, 0, &v, &err) < 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	if (ctx->json) {
		rc = print_json(cert_json(c, &v));
	} else {
		cert_text(c, &v, true);
		rc = 0;
	}
out:
	pki_cert_free(&c);
	pki_close(&pki);
	return rc;
}

static int cli_cert_export(struct cli_ctx *ctx, int argc, char **argv)
{
	bool chain = has_flag(&argc, argv, "--chain"), bad = false;
	const char *format = opt_value(&argc, argv, "--format", &bad);
	enum pki_format fmt = PKI_FMT_PEM;
	struct sg_error err;
	struct sg_buf out;
	struct pki *pki;
	int rc = 1;

	if (bad || argc < 2 || no_options(argc, argv, "cert", "export") != 0)
		return cli_usage("cert", "export");
	if (format != NULL && strcmp(format, "der") == 0)
		fmt = PKI_FMT_DER;
	else if (format != NULL && strcmp(format, "p7b") == 0)
		fmt = PKI_FMT_P7B;
	else if (format != NULL && strcmp(format, "pem") != 0)
		return cli_error("bad --format %s (pem, der or p7b)", format);
	pki = opened(ctx);
	if (pki == NULL)
		return 1;
	sg_buf_init(&out, 256u << 20);
	if (pki_certs_export(pki, (const char *const *)argv + 1, (size_t)argc - 1, fmt,
		chain ? PKI_EXPORT_CHAIN : 0, &out, &err) < 0)
		cli_error("%s", err.msg);
	else if (fwrite(out.data, 1, out.len, stdout) != out.len || fflush(stdout) != 0)
		cli_error("write error");
	else
		rc = 0;
	sg_buf_deinit(&out);
	pki_close(&pki);
	return rc;
}

struct ca_owner_arg {
	const char *thumb;      /* normalised */
	char name[CA_NAME_MAX + 1];
};

static int ca_owner_cb(const struct ca_info *i, void *arg, struct sg_error *err)
{
	struct ca_owner_arg *a = arg;

	(void)err;
	if (strcmp(i->root_thumbprint, a->thumb) == 0 ||
	    strcmp(i->inter_thumbprint, a->thumb) == 0)
		sg_strlcpy(a->name, i->name, sizeof(a->name));
	return 0;
}

/* ca_owner - the built-in CA whose root or intermediate thumb is, into
 * name ("" = none). -1 when the CAs cannot be read. */
static int ca_owner(struct cli_ctx *ctx, struct pki *pki, const char *thumb, char *name,
	size_t namesz, struct sg_error *err)
{
	struct pki_keys *keys = pki_keys_open(pki, ctx->cfg->data_dir, err);
	struct ca *ca = keys != NULL ? ca_open(pki, keys, err) : NULL;
	struct ca_owner_arg a = {thumb, ""};
	int rc = -1;

	if (ca != NULL && ca_list(ca, ca_owner_cb, &a, err) == 0) {
		sg_strlcpy(name, a.name, namesz);
		rc = 0;
	}
	ca_close(&ca);
	pki_keys_close(&keys);
	return rc;
}

static int cli_cert_delete(struct cli_ctx *ctx, int argc, char **argv)
{
	struct sg_error err;
	struct pki *pki;
	char thumb[PKI_THUMBPRINT_LEN + 1], owner[CA_NAME_MAX + 1];
	int i, rc = 0;

	if (argc < 2 || no_options(argc, argv, "cert", "delete") != 0)
		return cli_usage("cert", "delete");
	pki = opened(ctx);
	if (pki == NULL)
		return 1;
	for (i = 1; i < argc; i++) {
		/* a built-in CA's own certificates would leave the CA unusable */
		sg_strlcpy(thumb, argv[i], sizeof(thumb));
		if (strlen(argv[i]) == PKI_THUMBPRINT_LEN &&
		    pki_thumbprint_normalize(thumb, &err) == 0) {
			if (ca_owner(ctx, pki, thumb, owner, sizeof(owner), &err) < 0) {
				rc = cli_error("%s", err.msg);
				continue;
			}
			if (owner[0] != '\0') {
				rc = cli_error("%s: certificate of the built-in CA %s, not deleted",
					argv[i], owner);
				continue;
			}
		}
		if (pki_cert_delete(pki, argv[i], &err) < 0)
			rc = cli_error("%s", err.msg);
		else
			printf("deleted %s\n", argv[i]);
	}
	pki_close(&pki);
	return rc;
}

struct usage_arg {
	json_t *arr;
	bool json;
};

static int usage_cb(const struct pki_owner *o, enum pki_sel_kind kind, void *arg,
	struct sg_error *err)
{
	struct usage_arg *ua = arg;

	(void)err;
	if (ua->json) {
		json_array_append_new(ua->arr, json_pack("{s:s, s:s, s:s}", "owner_kind",
			pki_owner_kind_name(o->kind), "owner", o->name, "kind",
			pki_sel_kind_name(kind)));
	} else {
		printf("%s%s%s %s\n", pki_owner_kind_name(o->kind), o->name[0] ? " " : "",
			o->name, pki_sel_kind_name(kind));
	}
	return 0;
}

static int cli_cert_usage(struct cli_ctx *ctx, int argc, char **argv)
{
	struct usage_arg ua = {json_array(), ctx->json};
	struct sg_error err;
	struct pki *pki;
	int rc = 1;

	if (argc != 2 || no_options(argc, argv, "cert", "usage") != 0) {
		json_decref(ua.arr);
		return cli_usage("cert", "usage");
	}
	pki = opened(ctx);
	if (pki != NULL) {
		if (pki_cert_usage(pki, argv[1], usage_cb, &ua, &err) < 0)
			cli_error("%s", err.msg);
		else
			rc = ctx->json ? print_json(json_incref(ua.arr)) : 0;
	}
	json_decref(ua.arr);
	pki_close(&pki);
	return rc;
}

/* ------------------------------------------------------------- key cmds */

static int import_cb(const struct pki_cert *c, enum pki_import_state st, bool has_key,
	void *arg, struct sg_error *err)
{
	(void)arg;
	(void)err;
	printf("%s %s%s\n", st == PKI_IMPORT_EXISTS ? "exists" : "imported", c->thumbprint,
		st == PKI_IMPORT_KEY_ADDED ? " (key added)" : has_key ? " (with key)" : "");
	return 0;
}

static int cli_key_import(struct cli_ctx *ctx, int argc, char **argv)
{
	bool bad = false;
	const char *pwfile = opt_value(&argc, argv, "--password-file", &bad);
	struct pki_keys *keys = NULL;
	struct pki *pki = NULL;
	struct sg_error err;
	char *data = NULL, *pw = NULL;
	size_t len = 0;
	int rc = 1;

	if (bad || argc != 2 || no_options(argc, argv, "key", "import") != 0)
		return cli_usage("key", "import");
	pw = read_password(pwfile);
	if (pw == NULL)
		return 1;
	data = read_file(argv[1], &len);
	if (data == NULL)
		goto out;
	pki = opened(ctx);
	if (pki == NULL)
		goto out;
	keys = pki_keys_open(pki, ctx->cfg->data_dir, &err);
	if (keys == NULL) {
		cli_error("%s", err.msg);
		goto out;
	}
	if (pki_key_import_p12(keys, data, len, pw, import_cb, NULL, &err) < 0)
		cli_error("%s: %s", argv[1], err.msg);
	else
		rc = 0;
out:
	pki_keys_close(&keys);
	pki_close(&pki);
	free_password(pw);
	free(data);
	return rc;
}

static int cli_key_export(struct cli_ctx *ctx, int argc, char **argv)
{
	bool bad = false;
	const char *pwfile = opt_value(&argc, argv, "--password-file", &bad);
	const char *outpath = opt_value(&argc, argv, "--out", &bad);
	unsigned flags = 0;
	struct pki_keys *keys = NULL;
	struct pki *pki = NULL;
	struct sg_error err;
	struct sg_buf out;
	char *pw = NULL;
	int rc = 1;

	if (has_flag(&argc, argv, "--legacy"))
		flags |= PKI_P12_LEGACY;
	if (has_flag(&argc, argv, "--chain"))
		flags |= PKI_P12_CHAIN;
	if (bad || argc < 2 || no_options(argc, argv, "key", "export") != 0)
		return cli_usage("key", "export");
	pw = read_password(pwfile);
	if (pw == NULL)
		return 1;
	sg_buf_init(&out, 64u << 20);
	pki = opened(ctx);
	if (pki == NULL)
		goto out;
	keys = pki_keys_open(pki, ctx->cfg->data_dir, &err);
	if (keys == NULL) {
		cli_error("%s", err.msg);
		goto out;
	}
	if (pki_key_export_p12(keys, (const char *const *)argv + 1, (size_t)argc - 1, pw,
		flags, &out, &err) < 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	if (outpath != NULL) {
		if (sg_file_write_atomic(outpath, out.data, out.len, 0600, &err) < 0) {
			cli_error("%s", err.msg);
			goto out;
		}
	} else if (fwrite(out.data, 1, out.len, stdout) != out.len || fflush(stdout) != 0) {
		cli_error("write error");
		goto out;
	}
	rc = 0;
out:
	sg_buf_deinit(&out);
	pki_keys_close(&keys);
	pki_close(&pki);
	free_password(pw);
	return rc;
}

/* -------------------------------------------------------------- crl cmds */

static json_t *crl_json(const struct pki_crl_info *i)
{
	char tu[32], nu[32];

	return json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:I, s:b, s:s}", "id",
		(json_int_t)i->id, "thumbprint", i->thumbprint, "issuer", i->issuer,
		"crl_number", i->crl_number, "this_update",
		sg_time_iso8601(i->this_update, tu, sizeof(tu)), "next_update",
		i->next_update ? sg_time_iso8601(i->next_update, nu, sizeof(nu)) : "",
		"entries", (json_int_t)i->n_entries, "expired",
		i->next_update != 0 && i->next_update < sg_now(), "source", i->source);
}

static int cli_crl_import(struct cli_ctx *ctx, int argc, char **argv)
{
	struct pki_crl_info info;
	struct sg_error err;
	struct pki *pki;
	char *data;
	size_t len = 0;
	int r;

	if (argc != 2 || no_options(argc, argv, "crl", "import") != 0)
		return cli_usage("crl", "import");
	data = read_file(argv[1], &len);
	if (data == NULL)
		return 1;
	pki = opened(ctx);
	if (pki == NULL) {
		free(data);
		return 1;
	}
	r = pki_crl_import(pki, data, len, "import", &info, &err);
	free(data);
	pki_close(&pki);
	if (r < 0)
		return cli_error("%s: %s", argv[1], err.msg);
	printf("%s %lld %s (%lld entries)\n", r == PKI_CRL_ADDED ? "imported" : "kept-newer",
		(long long)info.id, info.issuer, (long long)info.n_entries);
	return 0;
}

struct crl_arg {
	json_t *arr;
	bool json;
};

static int crl_list_cb(const struct pki_crl_info *i, void *arg, struct sg_error *err)
{
	struct crl_arg *ca = arg;
	char tu[32], nu[32];

	(void)err;
	if (ca->json) {
		json_array_append_new(ca->arr, crl_json(i));
		return 0;
	}
	printf("%lld %s this=%s next=%s entries=%lld%s\n", (long long)i->id, i->issuer,
		sg_time_iso8601(i->this_update, tu, sizeof(tu)),
		i->next_update ? sg_time_iso8601(i->next_update, nu, sizeof(nu)) : "-",
		(long long)i->n_entries,
		i->next_update != 0 && i->next_update < sg_now() ? " EXPIRED" : "");
	return 0;
}

static int cli_crl_list(struct cli_ctx *ctx, int argc, char **argv)
{
	struct crl_arg ca = {json_array(), ctx->json};
	struct sg_error err;
	struct pki *pki;
	int rc = 1;

	if (argc != 1 || no_options(argc, argv, "crl", "list") != 0) {
		json_decref(ca.arr);
		return cli_usage("crl", "list");
	}
	pki = opened(ctx);
	if (pki != NULL) {
		if (pki_crl_list(pki, crl_list_cb, &ca, &err) < 0)
			cli_error("%s", err.msg);
		else
			rc = ctx->json ? print_json(json_incref(ca.arr)) : 0;
	}
	json_decref(ca.arr);
	pki_close(&pki);
	return rc;
}

/* crl_id - parse the ID argument */
static int crl_id(const char *s, int64_t *id)
{
	if (sg_parse_i64(s, 1, INT64_MAX, id) < 0) {
		cli_error("bad CRL id %s", s);
		return -1;
	}
	return 0;
}

static int cli_crl_show(struct cli_ctx *ctx, int argc, char **argv)
{
	struct pki_crl_info i;
	struct sg_error err;
	struct pki *pki;
	int64_t id;
	int r, rc = 1;

	if (argc != 2 || crl_id(argv[1], &id) < 0)
		return cli_usage("crl", "show");
	pki = opened(ctx);
	if (pki == NULL)
		return 1;
	r = pki_crl_get(pki, id, &i, &err);
	if (r <= 0) {
		cli_error("%s", r == 0 ? "no such CRL" : err.msg);
	} else if (ctx->json) {
		rc = print_json(crl_json(&i));
	} else {
		struct crl_arg ca = {NULL, false};

		crl_list_cb(&i, &ca, &err);
		printf("thumbprint %s\nnumber %s\nsigner %s\nsource %s\n", i.thumbprint,
			i.crl_number[0] ? i.crl_number : "-", i.signer[0] ? i.signer : "(unverified)",
			i.source);
		rc = 0;
	}
	pki_close(&pki);
	return rc;
}

static int entry_cb(const char *serial, int64_t at, int reason, void *arg,
	struct sg_error *err)
{
	struct crl_arg *ca = arg;
	char when[32];

	(void)err;
	sg_time_iso8601(at, when, sizeof(when));
	if (ca->json)
		json_array_append_new(ca->arr, json_pack("{s:s, s:s, s:s}", "serial", serial,
			"revoked", when, "reason", pki_crl_reason_name(reason)));
	else
		printf("%s %s %s\n", serial, when, pki_crl_reason_name(reason));
	return 0;
}

static int cli_crl_entries(struct cli_ctx *ctx, int argc, char **argv)
{
	struct crl_arg ca = {NULL, ctx->json};
	struct sg_error err;
	struct pki *pki;
	int64_t id;
	int rc = 1;

	if (argc != 2 || crl_id(argv[1], &id) < 0)
		return cli_usage("crl", "entries");
	pki = opened(ctx);
	if (pki == NULL)
		return 1;
	ca.arr = json_array();
	if (pki_crl_entries(pki, id, entry_cb, &ca, &err) < 0)
		cli_error("%s", err.msg);
	else
		rc = ctx->json ? print_json(json_incref(ca.arr)) : 0;
	json_decref(ca.arr);
	pki_close(&pki);
	return rc;
}

static int cli_crl_delete(struct cli_ctx *ctx, int argc, char **argv)
{
	struct sg_error err;
	struct pki *pki;
	int64_t id;
	int rc = 0;

	if (argc != 2 || crl_id(argv[1], &id) < 0)
		return cli_usage("crl", "delete");
	pki = opened(ctx);
	if (pki == NULL)
		return 1;
	if (pki_crl_delete(pki, id, &err) < 0)
		rc = cli_error("%s", err.msg);
	pki_close(&pki);
	return rc;
}

static void update_cb(const char *url, int ok, const char *msg, void *arg)
{
	(void)arg;
	if (ok)
		printf("ok %s\n", url);
	else
		printf("failed %s: %s\n", url, msg);
}

static int cli_crl_update(struct cli_ctx *ctx, int argc, char **argv)
{
	bool bad = false;
	const char *proxy = opt_value(&argc, argv, "--proxy", &bad);
	bool all = !has_flag(&argc, argv, "--due");
	struct sg_error err;
	struct pki *pki;
	int r;

	if (bad || argc != 1 || no_options(argc, argv, "crl", "update") != 0)
		return cli_usage("crl", "update");
	char *stored = NULL;

	pki = opened(ctx);
	if (pki == NULL)
		return 1;
	/* --proxy, else the configured one (`crl proxy`) */
	if (proxy == NULL && pki_crl_proxy_get(pki, &stored, &err) < 0) {
		pki_close(&pki);
		return cli_error("%s", err.msg);
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	r = pki_crl_update(pki, proxy != NULL ? proxy : stored,
		all ? PKI_CRL_UPDATE_ALL : 0, update_cb, NULL, &err);
	curl_global_cleanup();
	free(stored);
	pki_close(&pki);
	if (r < 0)
		return cli_error("%s", err.msg);
	if (r > 0)
		return cli_error("%d distribution point%s failed (the last CRL is kept)", r,
			r == 1 ? "" : "s");
	return 0;
}

/* crl proxy [URL|none] - show or set the proxy for CRL downloads (F-ADM-7). */
static int cli_crl_proxy(struct cli_ctx *ctx, int argc, char **argv)
{
	struct sg_error err;
	struct pki *pki;
	char *cur = NULL;
	int rc = 0;

	if (argc > 2)
		return cli_usage("crl", "proxy");
	pki = opened(ctx);
	if (pki == NULL)
		return 1;
	if (argc == 2) {
		if (pki_crl_proxy_set(pki, strcmp(argv[1], "none") == 0 ? NULL : argv[1],
			    &err) < 0)
			rc = cli_error("%s", err.msg);
	} else if (pki_crl_proxy_get(pki, &cur, &err) < 0) {
		rc = cli_error("%s", err.msg);
	} else if (ctx->json) {
		rc = print_json(json_pack("{s:s?}", "proxy", cur));
	} else {
		printf("%s\n", cur != NULL ? cur : "none");
	}
	free(cur);
	pki_close(&pki);
	return rc;
}

/* -------------------------------------------------------------- ctl cmds */

static int cli_ctl_add(struct cli_ctx *ctx, int argc, char **argv)
{
	bool white = has_flag(&argc, argv, "--white"), black = has_flag(&argc, argv, "--black");
	bool allow = has_flag(&argc, argv, "--allow-expired");
	struct sg_error err;
	struct pki *pki;
	int rc = 0;

	if (argc != 2 || white == black || no_options(argc, argv, "ctl", "add") != 0)
		return cli_usage("ctl", "add");
	pki = opened(ctx);
	if (pki == NULL)
		return 1;
	if (pki_ctl_set(pki, argv[1], white ? PKI_CTL_WHITE : PKI_CTL_BLACK,
		allow ? PKI_CTL_ALLOW_EXPIRED : 0, &err) < 0)
		rc = cli_error("%s", err.msg);
	pki_close(&pki);
	return rc;
}

static int ctl_cb(const struct pki_ctl_entry *e, void *arg, struct sg_error *err)
{
	struct crl_arg *ca = arg;
	char when[32];

	(void)err;
	sg_time_iso8601(e->created, when, sizeof(when));
	if (ca->json)
		json_array_append_new(ca->arr, json_pack("{s:s, s:s, s:b, s:s}", "thumbprint",
			e->thumbprint, "kind", pki_ctl_kind_name(e->kind), "allow_expired",
			e->allow_expired, "created", when));
	else
		printf("%s %s%s\n", e->thumbprint, pki_ctl_kind_name(e->kind),
			e->allow_expired ? " allow-expired" : "");
	return 0;
}

static int cli_ctl_list(struct cli_ctx *ctx, int argc, char **argv)
{
	struct crl_arg ca = {NULL, ctx->json};
	struct sg_error err;
	struct pki *pki;
	int rc = 1;

	if (argc != 1 || no_options(argc, argv, "ctl", "list") != 0)
		return cli_usage("ctl", "list");
	pki = opened(ctx);
	if (pki == NULL)
		return 1;
	ca.arr = json_array();
	if (pki_ctl_list(pki, ctl_cb, &ca, &err) < 0)
		cli_error("%s", err.msg);
	else
		rc = ctx->json ? print_json(json_incref(ca.arr)) : 0;
	json_decref(ca.arr);
	pki_close(&pki);
	return rc;
}

static int cli_ctl_delete(struct cli_ctx *ctx, int argc, char **argv)
{
	struct sg_error err;
	struct pki *pki;
	int rc = 0;

	if (argc != 2 || no_options(argc, argv, "ctl", "delete") != 0)
		return cli_usage("ctl", "delete");
	pki = opened(ctx);
	if (pki == NULL)
		return 1;
	if (pki_ctl_delete(pki, argv[1], &err) < 0)
		rc = cli_error("%s", err.msg);
	pki_close(&pki);
	return rc;
}

/* ------------------------------------------------------------- selection */

/*
 * owner_of - the owner named by group and the first argument: "user EMAIL",
 * "domain DOMAIN", "global" (no name). *first_r is the index of the next
 * argument. -1 on a usage error.
 */
static int owner_of(const char *group, int argc, char **argv, struct pki_owner *o,
	int *first_r)
{
	if (strcmp(group, "global") == 0) {
		o->kind = PKI_OWNER_GLOBAL;
		o->name = "";
		*first_r = 1;
		return 0;
	}
	if (argc < 2)
		return -1;
	o->kind = strcmp(group, "user") == 0 ? PKI_OWNER_USER : PKI_OWNER_DOMAIN;
	o->name = argv[1];
	*first_r = 2;
	return 0;
}

/* group_of - the command group ("user", "domain", "global") from argv[-1]-less
 * dispatch: the table entries carry it in their help, so we pass it by fn. */
static int select_common(struct cli_ctx *ctx, const char *group, const char *name,
	enum pki_sel_kind kind, int argc, char **argv)
{
	struct pki_owner o;
	struct sg_error err;
	struct pki *pki;
	int first, i, rc = 0, r;

	if (owner_of(group, argc, argv, &o, &first) < 0 || argc <= first ||
		(kind == PKI_SEL_SIGN && argc != first + 1) ||
		no_options(argc, argv, group, name) != 0)
		return cli_usage(group, name);
	pki = opened(ctx);
	if (pki == NULL)
		return 1;
	for (i = first; i < argc; i++) {
		r = pki_select_add(pki, &o, kind, argv[i], &err);
		if (r < 0)
			rc = cli_error("%s", err.msg);
		else
			printf("%s %s\n", r == 1 ? "selected" : "already-selected", argv[i]);
	}
	pki_close(&pki);
	return rc;
}

static int deselect_common(struct cli_ctx *ctx, const char *group, int argc, char **argv)
{
	struct pki_owner o;
	struct sg_error err;
	struct pki *pki;
	int first, i, k, r, rc = 0;

	if (owner_of(group, argc, argv, &o, &first) < 0 || argc <= first ||
		no_options(argc, argv, group, "deselect-cert") != 0)
		return cli_usage(group, "deselect-cert");
	pki = opened(ctx);
	if (pki == NULL)
		return 1;
	for (i = first; i < argc; i++) {
		int n = 0;

		for (k = 0; k < 3; k++) {
			r = pki_select_remove(pki, &o, (enum pki_sel_kind)k, argv[i], &err);
			if (r < 0) {
				rc = cli_error("%s", err.msg);
				break;
			}
			n += r;
		}
		if (k == 3 && n == 0)
			rc = cli_error("%s is not selected", argv[i]);
	}
	pki_close(&pki);
	return rc;
}

static int auto_signing_common(struct cli_ctx *ctx, const char *group, int argc,
	char **argv)
{
	struct pki_owner o;
	struct sg_error err;
	struct pki *pki;
	int first, rc = 0;

	if (owner_of(group, argc, argv, &o, &first) < 0 || argc != first)
		return cli_usage(group, "auto-signing-cert");
	pki = opened(ctx);
	if (pki == NULL)
		return 1;
	if (pki_select_clear(pki, &o, PKI_SEL_SIGN, &err) < 0)
		rc = cli_error("%s", err.msg);
	pki_close(&pki);
	return rc;
}

/* owner_chain - user, domain, every "*.suffix" wildcard, global (the CLI's
 * view; the policy module decides which wildcard domains exist) */
static size_t owner_chain(const struct pki_owner *o, struct pki_owner *chain,
	size_t max, char (*wild)[300])
{
	const char *d = NULL, *p;
	size_t n = 0, w = 0;

	chain[n++] = *o;
	if (o->kind == PKI_OWNER_USER) {
		d = sg_addr_domain(o->name);
		if (d != NULL)
			chain[n++] = (struct pki_owner){PKI_OWNER_DOMAIN, d};
	} else if (o->kind == PKI_OWNER_DOMAIN && strncmp(o->name, "*.", 2) != 0) {
		d = o->name;
	}
	for (p = d; p != NULL && n + 1 < max && w < 8; p = strchr(p + 1, '.')) {
		const char *suffix = p == d ? d : p + 1;

		snprintf(wild[w], sizeof(wild[w]), "*.%s", suffix);
		chain[n++] = (struct pki_owner){PKI_OWNER_DOMAIN, wild[w++]};
	}
	if (o->kind != PKI_OWNER_GLOBAL)
		chain[n++] = (struct pki_owner){PKI_OWNER_GLOBAL, ""};
	return n;
}

static void sel_out(const struct pki_selected *s, json_t *arr, bool json)
{
	if (json) {
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:b, s:s}", "thumbprint",
			s->thumbprint, "kind", pki_sel_kind_name(s->kind), "origin", s->origin,
			"usable", s->is_usable, "reason", s->reason));
		return;
	}
	printf("%s %s %s %s%s%s\n", pki_sel_kind_name(s->kind), s->thumbprint, s->origin,
		s->is_usable ? "usable" : "UNUSABLE", s->is_usable ? "" : ": ", s->reason);
}

static int certs_common(struct cli_ctx *ctx, const char *group, int argc, char **argv)
{
	struct pki_owner o, chain[16];
	char wild[8][300];
	struct pki_selection enc = {0}, add = {0};
	struct pki_selected sig;
	struct sg_error err;
	struct pki *pki;
	json_t *arr = json_array();
	size_t n, i;
	int first, r, rc = 1;

	if (owner_of(group, argc, argv, &o, &first) < 0 || argc != first) {
		json_decref(arr);
		return cli_usage(group, "certs");
	}
	pki = opened(ctx);
	if (pki == NULL) {
		json_decref(arr);
		return 1;
	}
	n = owner_chain(&o, chain, 16, wild);
	if (pki_select_encryption(pki, o.kind == PKI_OWNER_USER ? o.name : NULL, chain, n,
		PKI_SELECT_AUTO | PKI_SELECT_UNUSABLE, 0, &enc, &err) < 0 ||
		pki_select_additional(pki, chain, n, PKI_SELECT_UNUSABLE, 0, &add, &err) < 0)
		goto fail;
	for (i = 0; i < enc.n; i++)
		sel_out(&enc.v[i], arr, ctx->json);
	for (i = 0; i < add.n; i++)
		sel_out(&add.v[i], arr, ctx->json);
	r = pki_select_signing(pki, o.kind == PKI_OWNER_USER ? o.name : NULL, chain, n,
		PKI_SELECT_AUTO, 0, &sig, &err);
	if (r < 0)
		goto fail;
	if (r == 1)
		sel_out(&sig, arr, ctx->json);
	else if (!ctx->json)
		printf("sign (none usable)\n");
	rc = ctx->json ? print_json(json_incref(arr)) : 0;
	goto out;
fail:
	cli_error("%s", err.msg);
out:
	pki_selection_free(&enc);
	pki_selection_free(&add);
	json_decref(arr);
	pki_close(&pki);
	return rc;
}

#define SEL_FNS(g) \
	static int cli_##g##_select_cert(struct cli_ctx *c, int ac, char **av) \
	{ return select_common(c, #g, "select-cert", PKI_SEL_ENCRYPT, ac, av); } \
	static int cli_##g##_select_signing(struct cli_ctx *c, int ac, char **av) \
	{ return select_common(c, #g, "select-signing-cert", PKI_SEL_SIGN, ac, av); } \
	static int cli_##g##_select_additional(struct cli_ctx *c, int ac, char **av) \
	{ return select_common(c, #g, "select-additional-cert", PKI_SEL_ADDITIONAL, ac, \
		av); } \
	static int cli_##g##_deselect(struct cli_ctx *c, int ac, char **av) \
	{ return deselect_common(c, #g, ac, av); } \
	static int cli_##g##_auto_signing(struct cli_ctx *c, int ac, char **av) \
	{ return auto_signing_common(c, #g, ac, av); } \
	static int cli_##g##_certs(struct cli_ctx *c, int ac, char **av) \
	{ return certs_common(c, #g, ac, av); }
SEL_FNS(user)
SEL_FNS(domain)
SEL_FNS(global)

#define SEL_CMDS(g, who) \
	{#g, "select-cert", cli_##g##_select_cert, who "THUMBPRINT...", \
		"select encryption certificates"}, \
	{#g, "select-signing-cert", cli_##g##_select_signing, who "THUMBPRINT", \
		"select the signing certificate"}, \
	{#g, "select-additional-cert", cli_##g##_select_additional, who "THUMBPRINT...", \
		"select additional (escrow) certificates"}, \
	{#g, "deselect-cert", cli_##g##_deselect, who "THUMBPRINT...", \
		"remove certificate selections"}, \
	{#g, "auto-signing-cert", cli_##g##_auto_signing, who, \
		"back to the automatic signing certificate"}, \
	{#g, "certs", cli_##g##_certs, who, \
		"certificates in use (inherited + automatic) and why each is usable or not"}

static const struct cli_command cli_pki_commands[] = {
	{"cert", "import", cli_cert_import, "FILE [--roots]",
		"import certificates (DER, PEM, .p7b)"},
	{"cert", "list", cli_cert_list, "[--email ADDR] [--subject S] [--issuer S] "
		"[--serial HEX] [--roots|--all] [--has-key] [--valid-now] [--limit N] "
		"[--offset N]", "list certificates"},
	{"cert", "show", cli_cert_show, "THUMBPRINT", "details and validity"},
	{"cert", "export", cli_cert_export, "THUMBPRINT... [--chain] [--format pem|der|p7b]",
		"write certificates to stdout"},
	{"cert", "delete", cli_cert_delete, "THUMBPRINT...", "delete (refused while selected)"},
	{"cert", "usage", cli_cert_usage, "THUMBPRINT", "who selects this certificate"},
	{"key", "import", cli_key_import, "FILE.p12 --password-file F",
		"import a PKCS#12 (certificates + private key)"},
	{"key", "export", cli_key_export, "THUMBPRINT... --password-file F [--legacy] "
		"[--chain] [--out FILE]", "export keys as PKCS#12"},
	{"crl", "import", cli_crl_import, "FILE", "import a CRL (DER or PEM)"},
	{"crl", "list", cli_crl_list, "", "list CRLs"},
	{"crl", "show", cli_crl_show, "ID", "CRL details"},
	{"crl", "entries", cli_crl_entries, "ID", "revoked serials of a CRL"},
	{"crl", "delete", cli_crl_delete, "ID", "delete a CRL"},
	{"crl", "proxy", cli_crl_proxy, "[URL|none]",
		"show or set the HTTP proxy for CRL downloads"},
	{"crl", "update", cli_crl_update, "[--due] [--proxy URL]",
		"download CRLs from the distribution points"},
	{"ctl", "add", cli_ctl_add, "THUMBPRINT --white|--black [--allow-expired]",
		"add or replace a trust list entry"},
	{"ctl", "list", cli_ctl_list, "", "list the certificate trust list"},
	{"ctl", "delete", cli_ctl_delete, "THUMBPRINT", "remove a trust list entry"},
	SEL_CMDS(user, "EMAIL "),
	SEL_CMDS(domain, "DOMAIN "),
	SEL_CMDS(global, ""),
};
CLI_REGISTER(cli_pki_commands)
