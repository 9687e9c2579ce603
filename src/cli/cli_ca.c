/*
 * cli_ca.c - `sealgate ca ...`: the built-in certificate authority (SPEC §5,
 * §13; guide §12, App. G): create, list, default, settings, issue (with an
 * optional PKCS#12), bulk, crl, pending requests and send.
 *
 * Runs in the administrator's shell, single-threaded, daemon running or not.
 * Everything goes through src/ca over the database; keys stay in the PKI key
 * store. Passwords are read from files (never arguments). Listings accept
 * --json; errors go to stderr with a non-zero exit status.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "ca/ca.h"
#include "mime/mime.h"
#include "policy/policy.h"
#include "sms/sms.h"
#include "spool/spool.h"
#include "template/template.h"

struct ca_cli {
	struct pki *pki;
	struct pki_keys *keys;
	struct ca *ca;
};

static void ca_cli_close(struct ca_cli *c)
{
	ca_close(&c->ca);
	pki_keys_close(&c->keys);
	pki_close(&c->pki);
}

/* ca_cli_open - pki, keys and ca over the CLI's store; -1 after printing why */
static int ca_cli_open(struct cli_ctx *ctx, struct ca_cli *c)
{
	struct store *db = cli_db(ctx);
	struct sg_error err;

	memset(c, 0, sizeof(*c));
	if (db == NULL)
		return -1;
	c->pki = pki_open(db, &err);
	if (c->pki != NULL)
		c->keys = pki_keys_open(c->pki, ctx->cfg->data_dir, &err);
	if (c->keys != NULL)
		c->ca = ca_open(c->pki, c->keys, &err);
	if (c->ca == NULL) {
		cli_error("ca: %s", err.msg);
		ca_cli_close(c);
		return -1;
	}
	return 0;
}

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

static int no_options(int argc, char **argv, const char *name)
{
	int i;

	for (i = 1; i < argc; i++) {
		if (strncmp(argv[i], "--", 2) == 0) {
			cli_error("unknown option %s", argv[i]);
			return cli_usage("ca", name);
		}
	}
	return 0;
}

static int parse_days(const char *s, const char *what, unsigned *out)
{
	uint64_t v;

	if (s == NULL)
		return 0;
	if (sg_parse_u64(s, 36500, &v) < 0 || v == 0) {
		cli_error("%s: a number of days 1..36500 expected", what);
		return -1;
	}
	*out = (unsigned)v;
	return 0;
}

static int print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_ENSURE_ASCII);

	json_decref(j);
	if (s == NULL)
		return cli_error("out of memory");
	printf("%s\n", s);
	free(s);
	return 0;
}

static void free_secret(char *pw)
{
	if (pw != NULL) {
		memset(pw, 0, strlen(pw));
		free(pw);
	}
}

/* ----------------------------------------------------------------- create */

static int cli_ca_create(struct cli_ctx *ctx, int argc, char **argv)
{
	bool bad = false;
	const char *name = opt_value(&argc, argv, "--name", &bad);
	const char *root_cn = opt_value(&argc, argv, "--root-cn", &bad);
	const char *cn = opt_value(&argc, argv, "--cn", &bad);
	const char *org = opt_value(&argc, argv, "--org", &bad);
	const char *email = opt_value(&argc, argv, "--email", &bad);
	const char *fn = opt_value(&argc, argv, "--first-name", &bad);
	const char *ln = opt_value(&argc, argv, "--last-name", &bad);
	const char *key = opt_value(&argc, argv, "--key", &bad);
	const char *sig = opt_value(&argc, argv, "--sig", &bad);
	const char *rdays = opt_value(&argc, argv, "--root-days", &bad);
	const char *days = opt_value(&argc, argv, "--days", &bad);
	struct ca_create_opts o;
	struct ca_info info;
	struct ca_cli c;
	struct sg_error err;
	int rc = 1;

	memset(&o, 0, sizeof(o));
	if (has_flag(&argc, argv, "--default"))
		o.flags |= CA_CREATE_DEFAULT;
	if (bad || argc != 1 || name == NULL || no_options(argc, argv, "create") != 0)
		return cli_usage("ca", "create");
	o.name = name;
	o.root.cn = root_cn;
	o.inter.cn = cn;
	o.root.org = org;
	o.root.email = email;
	o.root.first_name = fn;
	o.root.last_name = ln;
	o.key = CA_KEY_RSA2048;
	o.md = CA_MD_SHA256;
	if (key != NULL && ca_key_type_parse(key, &o.key) < 0)
		return cli_error("--key: rsa2048, rsa3072, rsa4096, p256 or p384 expected");
	if (sig != NULL && ca_digest_parse(sig, &o.md) < 0)
		return cli_error("--sig: sha256, sha384 or sha512 expected");
	if (parse_days(rdays, "--root-days", &o.root_days) < 0 ||
		parse_days(days, "--days", &o.inter_days) < 0)
		return 1;
	if (ca_cli_open(ctx, &c) < 0)
		return 1;
	if (ca_create(c.ca, &o, &info, &err) < 0) {
		cli_error("ca create: %s", err.msg);
		goto out;
	}
	printf("created CA %s%s\nroot %s\nintermediate %s\n", info.name,
		info.is_default ? " (default)" : "", info.root_thumbprint, info.inter_thumbprint);
	rc = 0;
out:
	ca_cli_close(&c);
	return rc;
}

/* ------------------------------------------------------------------- list */

static json_t *info_json(const struct ca_info *i)
{
	char t[32];
	json_t *o = json_object();

	json_object_set_new(o, "name", json_string(i->name));
	json_object_set_new(o, "default", json_boolean(i->is_default));
	json_object_set_new(o, "root_thumbprint", json_string(i->root_thumbprint));
	json_object_set_new(o, "intermediate_thumbprint", json_string(i->inter_thumbprint));
	json_object_set_new(o, "root_subject", json_string(i->root_subject));
	json_object_set_new(o, "intermediate_subject", json_string(i->inter_subject));
	json_object_set_new(o, "key_type", json_string(ca_key_type_name(i->key)));
	json_object_set_new(o, "signature_algorithm", json_string(ca_digest_name(i->md)));
	json_object_set_new(o, "created", json_string(sg_time_iso8601(i->created, t,
		sizeof(t))));
	json_object_set_new(o, "not_after", json_string(sg_time_iso8601(i->not_after, t,
		sizeof(t))));
	json_object_set_new(o, "crl_number", json_integer(i->crl_number));
	return o;
}

struct list_arg {
	json_t *arr;
};

static int list_cb(const struct ca_info *i, void *arg, struct sg_error *err)
{
	struct list_arg *la = arg;
	char t[32];

	(void)err;
	if (la->arr != NULL) {
		json_array_append_new(la->arr, info_json(i));
		return 0;
	}
	printf("%s%s %s %s until %s\n  root %s\n  intermediate %s\n", i->name,
		i->is_default ? " (default)" : "", ca_key_type_name(i->key),
		ca_digest_name(i->md), sg_time_iso8601(i->not_after, t, sizeof(t)),
		i->root_subject, i->inter_subject);
	return 0;
}

static int cli_ca_list(struct cli_ctx *ctx, int argc, char **argv)
{
	struct list_arg la = {NULL};
	struct ca_cli c;
	struct sg_error err;
	int rc = 1;

	if (argc != 1 || no_options(argc, argv, "list") != 0)
		return cli_usage("ca", "list");
	if (ca_cli_open(ctx, &c) < 0)
		return 1;
	if (ctx->json)
		la.arr = json_array();
	if (ca_list(c.ca, list_cb, &la, &err) < 0) {
		cli_error("ca list: %s", err.msg);
		json_decref(la.arr);
		goto out;
	}
	rc = la.arr != NULL ? print_json(la.arr) : 0;
out:
	ca_cli_close(&c);
	return rc;
}

static int cli_ca_default(struct cli_ctx *ctx, int argc, char **argv)
{
	struct ca_cli c;
	struct sg_error err;
	int rc = 1;

	if (argc != 2 || no_options(argc, argv, "default") != 0)
		return cli_usage("ca", "default");
	if (ca_cli_open(ctx, &c) < 0)
		return 1;
	if (ca_default_set(c.ca, argv[1], &err) < 0)
		cli_error("ca default: %s", err.msg);
	else
		rc = 0;
	ca_cli_close(&c);
	return rc;
}

/* --------------------------------------------------------------- settings */

static int settings_show(struct cli_ctx *ctx, struct ca_cli *c)
{
	const struct ca_setting_def *d = ca_settings_catalogue();
	json_t *o = ctx->json ? json_object() : NULL;
	struct sg_error err;
	char *v;
	int r;

	for (; d->name != NULL; d++) {
		r = ca_setting_get(c->ca, d->name, &v, &err);
		if (r < 0) {
			json_decref(o);
			return cli_error("ca settings: %s", err.msg);
		}
		if (r > 0 && d->is_secret && !ctx->reveal) {
			free_secret(v);
			v = sg_xstrdup("***");
		}
		if (o != NULL)
			json_object_set_new(o, d->name, v != NULL ? json_string(v) : json_null());
		else
			printf("%s = %s\n", d->name, v != NULL ? v : "(unset)");
		free_secret(v);
	}
	return o != NULL ? print_json(o) : 0;
}

static int cli_ca_settings(struct cli_ctx *ctx, int argc, char **argv)
{
	struct ca_cli c;
	struct sg_error err;
	int i, rc = 1;

	if (no_options(argc, argv, "settings") != 0)
		return 2;
	if (ca_cli_open(ctx, &c) < 0)
		return 1;
	if (argc == 1) {
		rc = settings_show(ctx, &c) != 0;
		goto out;
	}
	for (i = 1; i < argc; i++) {
		char *eq = strchr(argv[i], '=');

		if (eq == NULL) {
			cli_error("NAME=VALUE or NAME= (back to the default) expected: %s", argv[i]);
			goto out;
		}
		*eq = '\0';
		if (ca_setting_set(c.ca, argv[i], eq[1] != '\0' ? eq + 1 : NULL, &err) < 0) {
			cli_error("ca settings: %s", err.msg);
			goto out;
		}
	}
	rc = 0;
out:
	ca_cli_close(&c);
	return rc;
}

/* ------------------------------------------------------------------ issue */

/* store_password - the user's last_used_pfx_password through the policy API */
static int store_password(void *arg, const char *email, const char *password,
	struct sg_error *err)
{
	struct store *db = arg;
	struct policy *p = policy_new(db, NULL);
	struct policy_change ch = {"last_used_pfx_password", password};
	int rc = policy_object_apply(p, POLICY_KIND_USER, email, &ch, 1, err);

	policy_free(&p);
	return rc;
}

/* Hooks of ca_send (F-CA-8): the CLI's store and configuration. */
struct ca_send_ctx {
	struct store *db;
	const struct sg_config *cfg;
};

/* send_global - the global policy properties (server secret, phone numbers). */
static int send_global(struct store *db, const struct sg_config *cfg,
	struct policy **p_r, struct policy_props **gp_r, struct sg_error *err)
{
	struct policy_opts o = {.hostname = cfg->hostname};

	*gp_r = NULL;
	*p_r = policy_new(db, &o);
	if (*p_r == NULL) {
		sg_error_set(err, SG_E_NOMEM, "policy");
		return -1;
	}
	return policy_resolve_global(*p_r, gp_r, err);
}

static int spool_write_cb(void *arg, const void *data, size_t len, struct sg_error *err)
{
	return spool_writer_write(arg, data, len, err);
}

/*
 * send_pfx - the PFX email (template pfx_email, global only) with the PKCS#12
 * attached, put straight into outgoing/ of the spool: it is delivered by the
 * running daemon, not processed by the pipeline (never encrypted by the
 * gateway, SPEC F-CA-8), with envelope sender <> and the own-mail marker.
 */
static int send_pfx(void *arg, const char *from, const char *to, const void *p12,
	size_t len, struct sg_error *err)
{
	struct ca_send_ctx *c = arg;
	struct template_src *src = NULL;
	struct mime_msg *msg = NULL;
	struct policy *p = NULL;
	struct policy_props *gp = NULL;
	struct spool *sp = NULL;
	struct spool_writer *w = NULL;
	struct spool_env env;
	struct template_render_opts ro = {.msgid_domain = c->cfg->hostname};
	const char *owners[] = {"global"};
	const char *secret, *msgid;
	char path[4096], marker[SG_MARKER_MAX];
	int fd = -1, rc = -1;
	struct template_var vars[] = {
		{"from", from}, {"to", to}, {"email", to}, {"phone", ""},
	};

	memset(&env, 0, sizeof(env));
	if (template_load(c->db, TEMPLATE_PFX_EMAIL, owners, 1, &src, err) < 0 ||
	    template_render_mail(src->id, src->text, vars, sizeof(vars) / sizeof(vars[0]), &ro,
		    &msg, err) < 0)
		goto out;
	snprintf(path, sizeof(path), "%s/pfx.XXXXXX", c->cfg->data_dir);
	fd = mkstemp(path);
	if (fd < 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "%s", path);
		goto out;
	}
	unlink(path);
	if (sg_write_all(fd, p12, len) < 0 || lseek(fd, 0, SEEK_SET) < 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "pkcs12 temp file");
		goto out;
	}
	if (template_msg_attach(msg, "application/x-pkcs12", "certificate.p12", fd, err) < 0)
		goto out;
	snprintf(path, sizeof(path), "%s/spool", c->cfg->data_dir);
	sp = spool_open(path, err);
	if (sp == NULL)
		goto out;
	env.sender = (char *)"";
	env.kind = SPOOL_KIND_NOTIFICATION;
	env.arrival = sg_now();
	env.rcpts = sg_xcalloc(1, sizeof(*env.rcpts));
	env.rcpts[0].addr = (char *)to;
	env.nrcpts = 1;
	w = spool_writer_new(sp, &env, 0, err);
	free(env.rcpts);
	if (w == NULL)
		goto out;
	/* own mail (F-FLOW-7): marked with the server secret when there is one */
	msgid = mime_msg_header_get_raw(msg, "Message-ID");
	if (send_global(c->db, c->cfg, &p, &gp, err) < 0)
		goto out;
	secret = policy_props_get(gp, POLICY_P_SERVER_SECRET, NULL);
	if (secret != NULL && secret[0] != '\0' && msgid != NULL) {
		if (sg_marker_make(secret, spool_writer_id(w), msgid, marker, sizeof(marker),
			    err) < 0 ||
		    mime_msg_header_set(msg, SG_MARKER_HEADER, marker, err) < 0)
			goto out;
	}
	if (mime_msg_write(msg, 0, spool_write_cb, w, NULL, err) < 0 ||
	    spool_writer_commit(&w, SPOOL_Q_OUTGOING, err) < 0)
		goto out;
	rc = 0;
out:
	spool_writer_abort(&w);
	spool_close(&sp);
	if (fd >= 0)
		close(fd);
	mime_msg_free(&msg);
	template_src_free(&src);
	policy_props_free(&gp);
	policy_free(&p);
	return rc;
}

/*
 * sms_password - the PKCS#12 password by SMS (template sms_pfx_password) to
 * the phone number of the user (property sms_phone_number); queued, sent by
 * the daemon. SG_E_CONFIG when the user has no phone number.
 */
static int sms_password(void *arg, const char *to, const char *password,
	struct sg_error *err)
{
	struct ca_send_ctx *c = arg;
	struct policy_opts o = {.hostname = c->cfg->hostname};
	struct policy *p = policy_new(c->db, &o);
	struct policy_props *up = NULL, *gp = NULL;
	struct template_src *src = NULL;
	const char *owners[] = {"global"};
	const char *phone, *cc;
	char e164[SMS_PHONE_MAX], *text = NULL;
	int rc = -1;
	struct template_var vars[] = {{"password", password}, {"email", to}};

	if (p == NULL || policy_resolve_user(p, to, &up, err) < 0 ||
	    policy_resolve_global(p, &gp, err) < 0)
		goto out;
	phone = policy_props_get(up, POLICY_P_SMS_PHONE_NUMBER, NULL);
	if (phone == NULL || phone[0] == '\0') {
		sg_error_set(err, SG_E_CONFIG, "%s has no sms_phone_number", to);
		goto out;
	}
	cc = policy_props_get(gp, POLICY_P_SMS_DEFAULT_COUNTRY_CODE, NULL);
	if (sms_phone_normalize(phone, cc, e164, sizeof(e164), err) < 0 ||
	    template_load(c->db, TEMPLATE_SMS_PFX_PASSWORD, owners, 1, &src, err) < 0 ||
	    template_render_sms(src->id, src->text, vars, sizeof(vars) / sizeof(vars[0]),
		    &text, err) < 0 ||
	    sms_enqueue(c->db, e164, text, NULL, NULL, err) < 0)
		goto out;
	rc = 0;
out:
	if (text != NULL)
		explicit_bzero(text, strlen(text));
	free(text);
	template_src_free(&src);
	policy_props_free(&up);
	policy_props_free(&gp);
	policy_free(&p);
	return rc;
}

/* store_password_hook - store_password for ca_send's hooks */
static int store_password_hook(void *arg, const char *email, const char *password,
	struct sg_error *err)
{
	struct ca_send_ctx *c = arg;

	return store_password(c->db, email, password, err);
}

struct pfx_req {
	const char *path;       /* --pfx FILE */
	const char *pwfile;     /* --password-file */
	const char *pwout;      /* --password-out */
	bool legacy;
	int store;              /* -1 = setting, 0 no, 1 yes */
};

static int issue_pfx(struct cli_ctx *ctx, struct ca_cli *c, const struct ca_issued *is,
	const char *email, const struct pfx_req *pr)
{
	struct sg_error err;
	struct sg_buf out;
	const char *t[1] = {is->thumbprint};
	char *pw = NULL;
	bool store = false, generated = false;
	int rc = -1;

	sg_buf_init(&out, PKI_IMPORT_MAX);
	if (pr->pwfile != NULL) {
		pw = cli_read_secret_file(pr->pwfile, &err);
	} else {
		generated = true;
		if (ca_pfx_password_new(c->ca, 0, &pw, &err) < 0)
			pw = NULL;
	}
	if (pw == NULL) {
		cli_error("password: %s", err.msg);
		goto out;
	}
	if (ca_pfx_export(c->ca, t, 1, pw, NULL, pr->legacy ? CA_PFX_LEGACY : 0, &out,
		&err) < 0 || sg_file_write_atomic(pr->path, out.data, out.len, 0600, &err) < 0) {
		cli_error("pfx: %s", err.msg);
		goto out;
	}
	if (pr->store < 0) {
		if (ca_setting_flag(c->ca, "store_password", &store, &err) < 0) {
			cli_error("%s", err.msg);
			goto out;
		}
	} else {
		store = pr->store > 0;
	}
	if (store && store_password(cli_db(ctx), email, pw, &err) < 0) {
		cli_error("store password: %s", err.msg);
		goto out;
	}
	if (generated && pr->pwout != NULL) {
		if (sg_file_write_atomic(pr->pwout, pw, strlen(pw), 0600, &err) < 0) {
			cli_error("password file: %s", err.msg);
			goto out;
		}
	} else if (generated) {
		printf("pfx password: %s\n", pw);
	}
	rc = 0;
out:
	if (out.data != NULL)
		memset(out.data, 0, out.len);
	sg_buf_deinit(&out);
	free_secret(pw);
	return rc;
}

static int cli_ca_issue(struct cli_ctx *ctx, int argc, char **argv)
{
	bool bad = false;
	const char *cn = opt_value(&argc, argv, "--cn", &bad);
	const char *caname = opt_value(&argc, argv, "--ca", &bad);
	const char *org = opt_value(&argc, argv, "--org", &bad);
	const char *fn = opt_value(&argc, argv, "--first-name", &bad);
	const char *ln = opt_value(&argc, argv, "--last-name", &bad);
	const char *days = opt_value(&argc, argv, "--days", &bad);
	const char *key = opt_value(&argc, argv, "--key", &bad);
	const char *sig = opt_value(&argc, argv, "--sig", &bad);
	const char *crl_dp = opt_value(&argc, argv, "--crl-dp", &bad);
	const char *handler = opt_value(&argc, argv, "--handler", &bad);
	const char *keyfile = opt_value(&argc, argv, "--key-file", &bad);
	struct pfx_req pr = {NULL, NULL, NULL, false, -1};
	struct ca_request rq;
	enum ca_handler h = CA_HANDLER_BUILTIN;
	char *key_pem = NULL;
	size_t key_len = 0;
	int64_t id = 0;
	int r;
	struct ca_issue_opts o = CA_ISSUE_OPTS_INIT;
	struct ca_issued is;
	struct ca_cli c;
	struct sg_error err;
	enum ca_key_type kt;
	enum ca_digest md;
	int rc = 1;

	pr.path = opt_value(&argc, argv, "--pfx", &bad);
	pr.pwfile = opt_value(&argc, argv, "--password-file", &bad);
	pr.pwout = opt_value(&argc, argv, "--password-out", &bad);
	pr.legacy = has_flag(&argc, argv, "--legacy");
	if (has_flag(&argc, argv, "--store-password"))
		pr.store = 1;
	if (has_flag(&argc, argv, "--no-store-password"))
		pr.store = 0;
	if (has_flag(&argc, argv, "--no-crl-dp"))
		crl_dp = "";
	if (bad || argc != 2 || no_options(argc, argv, "issue") != 0)
		return cli_usage("ca", "issue");
	if (pr.path == NULL && (pr.pwfile != NULL || pr.pwout != NULL || pr.store > 0))
		return cli_error("--password-file, --password-out and --store-password need "
			"--pfx FILE");
	o.ca_name = caname;
	o.subject.email = argv[1];
	o.subject.cn = cn;
	o.subject.org = org;
	o.subject.first_name = fn;
	o.subject.last_name = ln;
	o.crl_dp = crl_dp;
	if (parse_days(days, "--days", &o.days) < 0)
		return 1;
	if (key != NULL) {
		if (ca_key_type_parse(key, &kt) < 0)
			return cli_error("--key: rsa2048, rsa3072, rsa4096, p256 or p384 expected");
		o.key = (int)kt;
	}
	if (sig != NULL) {
		if (ca_digest_parse(sig, &md) < 0)
			return cli_error("--sig: sha256, sha384 or sha512 expected");
		o.md = (int)md;
	}
	if (handler != NULL && ca_handler_parse(handler, &h) < 0)
		return cli_error("--handler: built-in, delayed or cmp expected");
	if (keyfile != NULL && sg_file_read(keyfile, 1 << 20, &key_pem, &key_len, &err) < 0)
		return cli_error("--key-file: %s", err.msg);
	o.key_pem = key_pem;
	if (ca_cli_open(ctx, &c) < 0) {
		free_secret(key_pem);
		return 1;
	}
	if (h == CA_HANDLER_BUILTIN) {
		r = ca_issue(c.ca, &o, &is, &err) < 0 ? -1 : CA_REQ_ISSUED;
	} else {
		memset(&rq, 0, sizeof(rq));
		rq.subject = o.subject;
		rq.ca_name = caname;
		rq.key_pem = key_pem;
		r = ca_request_submit(c.ca, (int)h, &rq, &is, &id, &err);
	}
	if (r < 0) {
		cli_error("ca issue: %s", err.msg);
		goto out;
	}
	if (r == CA_REQ_QUEUED) {
		printf("queued %lld\n", (long long)id);
		rc = 0;
		goto out;
	}
	printf("serial %s\n", is.serial);
	if (pr.path != NULL && issue_pfx(ctx, &c, &is, argv[1], &pr) < 0)
		goto out;
	printf("%s\n", is.thumbprint);   /* SPEC §13: the thumbprint is the last line */
	rc = 0;
out:
	free_secret(key_pem);
	ca_cli_close(&c);
	return rc;
}

/* ------------------------------------------------------------------- bulk */

struct bulk_arg {
	json_t *arr;
	bool preview;
};

static void bulk_cb(const struct ca_csv_row *row, const char *outcome, void *arg)
{
	struct bulk_arg *ba = arg;

	if (ba->arr != NULL) {
		json_t *o = json_object();

		json_object_set_new(o, "line", json_integer(row->line));
		json_object_set_new(o, "email", json_string(row->email));
		json_object_set_new(o, "result", json_string(outcome));
		json_array_append_new(ba->arr, o);
		return;
	}
	printf("line %u %s: %s\n", row->line, row->email, outcome);
}

static void preview_row(struct bulk_arg *ba, const struct ca_csv_row *r, const char *state)
{
	if (ba->arr != NULL) {
		json_t *o = json_object();

		json_object_set_new(o, "line", json_integer(r->line));
		json_object_set_new(o, "email", json_string(r->email));
		json_object_set_new(o, "commonname", json_string(r->cn));
		json_object_set_new(o, "organisation", r->org ? json_string(r->org) : json_null());
		json_object_set_new(o, "firstname", r->first_name ? json_string(r->first_name) :
			json_null());
		json_object_set_new(o, "lastname", r->last_name ? json_string(r->last_name) :
			json_null());
		json_object_set_new(o, "action", json_string(state));
		json_array_append_new(ba->arr, o);
		return;
	}
	printf("line %u: email=%s cn=%s org=%s firstname=%s lastname=%s -> %s\n", r->line,
		r->email, r->cn, r->org ? r->org : "", r->first_name ? r->first_name : "",
		r->last_name ? r->last_name : "", state);
}

static int cli_ca_bulk(struct cli_ctx *ctx, int argc, char **argv)
{
	bool bad = false;
	const char *handler = opt_value(&argc, argv, "--handler", &bad);
	struct bulk_arg ba = {NULL, false};
	struct ca_csv csv = {NULL, 0};
	struct ca_cli c = {NULL, NULL, NULL};
	struct sg_error err;
	enum ca_handler h;
	char *data = NULL;
	size_t len = 0, i;
	int hv = -1, failed, rc = 1;

	ba.preview = has_flag(&argc, argv, "--preview");
	if (bad || argc != 2 || no_options(argc, argv, "bulk") != 0)
		return cli_usage("ca", "bulk");
	if (handler != NULL) {
		if (ca_handler_parse(handler, &h) < 0)
			return cli_error("--handler: built-in, delayed or cmp expected");
		hv = (int)h;
	}
	if (sg_file_read(argv[1], CA_CSV_FILE_MAX, &data, &len, &err) < 0)
		return cli_error("%s", err.msg);
	if (ca_csv_parse(data, len, 0, &csv, &err) < 0) {
		cli_error("%s: %s", argv[1], err.msg);
		goto out;
	}
	if (ca_cli_open(ctx, &c) < 0)
		goto out;
	if (ctx->json)
		ba.arr = json_array();
	if (ba.preview) {
		for (i = 0; i < csv.n; i++) {
			int r = ca_has_signing_cert(c.ca, csv.rows[i].email, &err);

			if (r < 0) {
				cli_error("%s", err.msg);
				goto out;
			}
			preview_row(&ba, &csv.rows[i], r > 0 ? "skip (valid signing certificate)" :
				"request");
		}
		rc = 0;
	} else {
		failed = ca_bulk(c.ca, &csv, hv, bulk_cb, &ba, &err);
		if (failed < 0) {
			cli_error("ca bulk: %s", err.msg);
			goto out;
		}
		if (failed > 0)
			cli_error("%d of %zu requests failed", failed, csv.n);
		rc = failed > 0;
	}
	if (ba.arr != NULL) {
		print_json(ba.arr);
		ba.arr = NULL;
	}
out:
	json_decref(ba.arr);
	ca_csv_free(&csv);
	free(data);
	if (c.ca != NULL)
		ca_cli_close(&c);
	return rc;
}

/* -------------------------------------------------------------------- crl */

static int cli_ca_crl(struct cli_ctx *ctx, int argc, char **argv)
{
	bool bad = false;
	const char *caname = opt_value(&argc, argv, "--ca", &bad);
	const char *next = opt_value(&argc, argv, "--next-update", &bad);
	const char *sig = opt_value(&argc, argv, "--sig", &bad);
	const char *outpath = opt_value(&argc, argv, "--out", &bad);
	const char *reason = opt_value(&argc, argv, "--reason", &bad);
	struct ca_crl_opts o = {0};
	struct pki_crl_info info;
	struct ca_cli c;
	struct sg_error err;
	struct sg_buf der;
	enum ca_digest md;
	int i, first = 1, rc = 1;

	o.md = -1;
	o.reason = -1;
	if (has_flag(&argc, argv, "--new"))
		o.flags |= CA_CRL_NEW;
	has_flag(&argc, argv, "--revoke");   /* the serials follow; may be none */
	if (bad || no_options(argc, argv, "crl") != 0)
		return cli_usage("ca", "crl");
	o.ca_name = caname;
	if (reason != NULL) {
		o.reason = ca_crl_reason_parse(reason);
		if (o.reason < 0)
			return cli_error("--reason: keyCompromise, cACompromise, affiliationChanged, "
				"superseded, cessationOfOperation, certificateHold, privilegeWithdrawn, "
				"aACompromise or unspecified expected");
	}
	if (parse_days(next, "--next-update", &o.next_update_days) < 0)
		return 1;
	if (sig != NULL) {
		if (ca_digest_parse(sig, &md) < 0)
			return cli_error("--sig: sha256, sha384 or sha512 expected");
		o.md = (int)md;
	}
	for (i = 1; i < argc; i++)
		if (argv[i][0] == '\0')
			return cli_error("empty serial number");
	o.serials = (const char *const *)argv + first;
	o.n_serials = (size_t)argc - 1;
	if (ca_cli_open(ctx, &c) < 0)
		return 1;
	sg_buf_init(&der, PKI_CRL_MAX);
	if (ca_crl(c.ca, &o, &der, &info, &err) < 0) {
		cli_error("ca crl: %s", err.msg);
		goto out;
	}
	if (outpath != NULL && sg_file_write_atomic(outpath, der.data, der.len, 0644, &err) < 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	printf("crl %lld number %s entries %lld\n", (long long)info.id, info.crl_number,
		(long long)info.n_entries);
	rc = 0;
out:
	sg_buf_deinit(&der);
	ca_cli_close(&c);
	return rc;
}

/* ---------------------------------------------------------------- pending */

static int pending_cb(const struct ca_pending *p, void *arg, struct sg_error *err)
{
	json_t *arr = arg;
	char t[32];

	(void)err;
	if (arr != NULL) {
		json_t *o = json_object();

		json_object_set_new(o, "id", json_integer(p->id));
		json_object_set_new(o, "email", json_string(p->email));
		json_object_set_new(o, "cn", json_string(p->cn));
		json_object_set_new(o, "ca", json_string(p->ca_name));
		json_object_set_new(o, "handler", json_string(p->handler));
		json_object_set_new(o, "state", json_string(p->state));
		json_object_set_new(o, "attempts", json_integer(p->attempts));
		json_object_set_new(o, "created", json_string(sg_time_iso8601(p->created, t,
			sizeof(t))));
		json_object_set_new(o, "last_error", json_string(p->last_error));
		json_object_set_new(o, "thumbprint", json_string(p->thumbprint));
		json_array_append_new(arr, o);
		return 0;
	}
	printf("%lld %s %s %s attempts=%lld%s%s\n", (long long)p->id, p->state, p->email,
		sg_time_iso8601(p->created, t, sizeof(t)), (long long)p->attempts,
		p->last_error[0] ? " error=" : "", p->last_error);
	return 0;
}

static int cli_ca_pending(struct cli_ctx *ctx, int argc, char **argv)
{
	bool bad = false;
	const char *state = opt_value(&argc, argv, "--state", &bad);
	const char *verb = argc > 1 ? argv[1] : "list";
	struct ca_cli c;
	struct sg_error err;
	int64_t id = 0;
	json_t *arr = NULL;
	int n, rc = 1;

	if (bad || no_options(argc, argv, "pending") != 0)
		return cli_usage("ca", "pending");
	if ((strcmp(verb, "cancel") == 0 || strcmp(verb, "retry") == 0) &&
		(argc != 3 || sg_parse_i64(argv[2], 1, INT64_MAX, &id) < 0))
		return cli_usage("ca", "pending");
	if (strcmp(verb, "list") != 0 && strcmp(verb, "cancel") != 0 &&
		strcmp(verb, "retry") != 0 && strcmp(verb, "run") != 0)
		return cli_usage("ca", "pending");
	if (ca_cli_open(ctx, &c) < 0)
		return 1;
	if (strcmp(verb, "cancel") == 0) {
		rc = ca_pending_cancel(c.ca, id, &err) < 0;
	} else if (strcmp(verb, "retry") == 0) {
		rc = ca_pending_retry(c.ca, id, &err) < 0;
	} else if (strcmp(verb, "run") == 0) {
		n = ca_worker_run(c.ca, 0, &err);
		rc = n < 0;
		if (n >= 0)
			printf("issued %d\n", n);
	} else {
		arr = ctx->json ? json_array() : NULL;
		rc = ca_pending_list(c.ca, state, pending_cb, arr, &err) < 0;
		if (rc == 0 && arr != NULL) {
			print_json(arr);
			arr = NULL;
		}
	}
	if (rc != 0)
		cli_error("ca pending %s: %s", verb, err.msg);
	json_decref(arr);
	ca_cli_close(&c);
	return rc;
}

/* ------------------------------------------------------------------- send */

static int cli_ca_send(struct cli_ctx *ctx, int argc, char **argv)
{
	bool bad = false;
	const char *to = opt_value(&argc, argv, "--to", &bad);
	const char *pwfile = opt_value(&argc, argv, "--password-file", &bad);
	struct ca_send_ctx sc;
	struct ca_delivery d = {send_pfx, sms_password, store_password_hook, &sc};
	struct ca_cli c;
	struct sg_error err;
	unsigned flags = 0;
	char *pw = NULL;
	int rc = 1;

	if (has_flag(&argc, argv, "--sms"))
		flags |= CA_SEND_SMS;
	if (has_flag(&argc, argv, "--allow-mismatch"))
		flags |= CA_SEND_ALLOW_MISMATCH;
	if (has_flag(&argc, argv, "--store-password"))
		flags |= CA_SEND_STORE_PASSWORD;
	if (bad || argc < 2 || to == NULL || no_options(argc, argv, "send") != 0)
		return cli_usage("ca", "send");
	if (ca_cli_open(ctx, &c) < 0)
		return 1;
	sc.db = cli_db(ctx);
	sc.cfg = ctx->cfg;
	if (pwfile != NULL)
		pw = cli_read_secret_file(pwfile, &err);
	else if (ca_pfx_password_new(c.ca, 0, &pw, &err) < 0)
		pw = NULL;
	if (pw == NULL) {
		cli_error("password: %s", err.msg);
		goto out;
	}
	if (ca_send(c.ca, (const char *const *)argv + 1, (size_t)argc - 1, to, pw, flags, &d,
		&err) < 0) {
		cli_error("ca send: %s", err.msg);
		goto out;
	}
	rc = 0;
out:
	free_secret(pw);
	ca_cli_close(&c);
	return rc;
}

static const struct cli_command cli_ca_commands[] = {
	{"ca", "create", cli_ca_create, "--name NAME [--root-cn CN] [--cn CN] [--org O] "
		"[--email E] [--first-name F] [--last-name L] [--key rsa2048|rsa3072|rsa4096|"
		"p256|p384] [--sig sha256|sha384|sha512] [--root-days N] [--days N] [--default]",
		"create a CA (root + intermediate)"},
	{"ca", "list", cli_ca_list, "", "list the CAs"},
	{"ca", "default", cli_ca_default, "NAME", "make NAME the default CA"},
	{"ca", "settings", cli_ca_settings, "[NAME=VALUE | NAME=]...",
		"show or change the CA settings"},
	{"ca", "issue", cli_ca_issue, "EMAIL [--cn NAME] [--ca NAME] [--org O] "
		"[--first-name F] [--last-name L] [--days N] [--key TYPE] [--sig MD] "
		"[--crl-dp URL|--no-crl-dp] [--handler built-in|delayed|cmp] [--key-file KEY.pem] "
		"[--pfx FILE [--password-file F|--password-out F] [--legacy] "
		"[--store-password|--no-store-password]]",
		"issue an S/MIME certificate; prints its thumbprint last"},
	{"ca", "bulk", cli_ca_bulk, "FILE.csv [--preview] [--handler built-in|delayed|cmp]",
		"request certificates for the rows of a CSV file (guide App. G)"},
	{"ca", "crl", cli_ca_crl, "[--ca NAME] --revoke [SERIAL_HEX...] [--reason REASON] "
		"[--next-update DAYS] [--sig MD] [--new] [--out FILE.crl]",
		"create or update a CA's CRL"},
	{"ca", "pending", cli_ca_pending, "[list [--state S]|cancel ID|retry ID|run]",
		"delayed certificate requests"},
	{"ca", "send", cli_ca_send, "THUMBPRINT... --to ADDR [--password-file F] [--sms] "
		"[--allow-mismatch] [--store-password]",
		"send certificates and keys as PKCS#12 by email"},
};
CLI_REGISTER(cli_ca_commands)
