/*
 * cli_process.c - `sealgate process --from ADDR --to ADDR... --out-dir DIR
 * [FILE]` (SPEC §13): run the daemon's processing pipeline (src/mpa,
 * mpa_process_stream) on one message offline and write every output as
 * DIR/N.eml with its envelope in DIR/N.json
 * ({"from": ..., "to": [...], "kind": "message|notification|bounce"}),
 * N counting from 1: first one output per recipient group, then the
 * generated mail (an "encryption failed" notification to an internal
 * originator). With -c CONF (or SEALGATE_CONF) the policy, certificates and
 * MTA settings of that configuration's database apply exactly as in the
 * daemon; without one the message passes through unchanged (no policy
 * without a database). Exit 0 when the message was processed, whatever the
 * policy decided (also when some or all recipients got nothing); bad
 * arguments or input, or a processing failure: a message on stderr,
 * non-zero.
 *
 * Runs in the administrator's shell, single-threaded. The message is read
 * from FILE, or from stdin (copied to an unlinked temporary file first: the
 * pipeline streams from a file, never from memory).
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "mpa/mpa.h"
#include "mta/mta.h"
#include "pdf/pdf.h"

#define CLI_PROCESS_CHUNK (64 * 1024)

struct cli_process_out {
	const char *dir;
	unsigned n;          /* outputs written so far */
};

/* cli_process_addr - "a@b", "<a@b>" -> copy without brackets; NULL if bad.
 * allow_null: "" and "<>" give "" (the null sender). */
static char *cli_process_addr(const char *arg, bool allow_null)
{
	size_t len = strlen(arg);
	char *a;

	if (len >= 2 && arg[0] == '<' && arg[len - 1] == '>')
		a = sg_xstrndup(arg + 1, len - 2);
	else
		a = sg_xstrdup(arg);
	if ((a[0] == '\0' && allow_null) || (a[0] != '\0' && sg_addr_is_valid(a)))
		return a;
	free(a);
	return NULL;
}

/* cli_process_copy - the range [off, off+len) of fd into the new file path. */
static int cli_process_copy(int fd, uint64_t off, uint64_t len, const char *path,
	struct sg_error *err)
{
	char *buf = sg_xmalloc(CLI_PROCESS_CHUNK);
	uint64_t pos = 0;
	int out, rc = -1;

	out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "%s", path);
		free(buf);
		return -1;
	}
	while (pos < len) {
		size_t want = len - pos < CLI_PROCESS_CHUNK ? (size_t)(len - pos) :
			CLI_PROCESS_CHUNK;
		ssize_t n = pread(fd, buf, want, (off_t)(off + pos));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			sg_error_set_errno(err, SG_E_IO, n < 0 ? errno : EIO, "read output");
			goto out;
		}
		if (sg_write_all(out, buf, (size_t)n) < 0) {
			sg_error_set_errno(err, SG_E_IO, errno, "%s", path);
			goto out;
		}
		pos += (uint64_t)n;
	}
	rc = 0;
out:
	if (close(out) < 0 && rc == 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "%s", path);
		rc = -1;
	}
	free(buf);
	return rc;
}

/* cli_process_json - DIR/N.json: the output's envelope. */
static int cli_process_json(const struct spool_env *env, const char *path,
	struct sg_error *err)
{
	json_t *o = json_object(), *to = json_array();
	char *text = NULL;
	size_t i;
	int rc = -1;

	for (i = 0; i < env->nrcpts; i++)
		json_array_append_new(to, json_string(env->rcpts[i].addr));
	json_object_set_new(o, "from", json_string(env->sender));
	json_object_set_new(o, "to", to);
	json_object_set_new(o, "kind", json_string(spool_kind_name(env->kind)));
	text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (text == NULL) {
		/* addresses are checked UTF-8, so only allocation can fail here */
		sg_error_set(err, SG_E_NOMEM, "%s: cannot encode JSON", path);
		goto out;
	}
	{
		char *line = sg_xasprintf("%s\n", text);

		rc = sg_file_write_atomic(path, line, strlen(line), 0644, err);
		free(line);
	}
out:
	free(text);
	json_decref(o);
	return rc;
}

/* cli_process_output - mpa_output_fn: write N.eml and N.json. */
static int cli_process_output(void *arg, const struct mpa_output *out,
	struct sg_error *err)
{
	struct cli_process_out *po = arg;
	char *eml, *json;
	int rc;

	po->n++;
	eml = sg_xasprintf("%s/%u.eml", po->dir, po->n);
	json = sg_xasprintf("%s/%u.json", po->dir, po->n);
	rc = cli_process_copy(out->fd, out->offset, out->len, eml, err);
	if (rc == 0)
		rc = cli_process_json(out->env, json, err);
	if (rc == 0)
		printf("%s (%s, %zu recipient%s, %ju bytes)\n", eml,
			spool_kind_name(out->env->kind), out->env->nrcpts,
			out->env->nrcpts == 1 ? "" : "s", (uintmax_t)out->len);
	free(eml);
	free(json);
	return rc;
}

/* cli_process_stdin - stdin into an unlinked temporary file; fd or -1. */
static int cli_process_stdin(struct sg_error *err)
{
	const char *dir = getenv("TMPDIR");
	char *buf, *path;
	ssize_t n;
	int fd;

	if (dir == NULL || dir[0] == '\0')
		dir = "/tmp";
	path = sg_xasprintf("%s/sealgate-process.XXXXXX", dir);
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "temporary file in %s", dir);
		free(path);
		return -1;
	}
	(void)unlink(path);
	free(path);
	buf = sg_xmalloc(CLI_PROCESS_CHUNK);
	while ((n = read(STDIN_FILENO, buf, CLI_PROCESS_CHUNK)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || sg_write_all(fd, buf, (size_t)n) < 0) {
			sg_error_set_errno(err, SG_E_IO, errno, n < 0 ? "read stdin" :
				"write temporary file");
			close(fd);
			fd = -1;
			break;
		}
	}
	free(buf);
	return fd;
}

/* cli_process_open - FILE (a regular file) or stdin; fd or -1. */
static int cli_process_open(const char *file, struct sg_error *err)
{
	struct stat st;
	int fd;

	if (file == NULL || strcmp(file, "-") == 0)
		return cli_process_stdin(err);
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "%s", file);
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		sg_error_set(err, SG_E_INVAL, "%s: not a regular file", file);
		close(fd);
		return -1;
	}
	return fd;
}

/* cli_process_max_size - the after-filter limit from the MTA settings when a
 * database is configured (as the daemon), else none. 0 or -1. */
static int cli_process_max_size(struct store *db, const char *host, uint64_t *max_r,
	struct sg_error *err)
{
	struct mta_settings *s;

	*max_r = 0;
	if (db == NULL)
		return 0;
	s = mta_settings_load(db, host, err);
	if (s == NULL)
		return -1;
	*max_r = s->after_filter_size;
	mta_settings_free(&s);
	return 0;
}

/* cli_process_args - parse the options into env, *dir_r and *file_r;
 * 0 ok, 2 usage error (message printed). */
static int cli_process_args(int argc, char **argv, struct spool_env *env,
	const char **dir_r, const char **file_r)
{
	int i;
	bool in_to = false;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *val = NULL;
		char *addr;

		if (strncmp(a, "--from", 6) == 0 && (a[6] == '\0' || a[6] == '=')) {
			in_to = false;
			val = a[6] == '=' ? a + 7 : (i + 1 < argc ? argv[++i] : NULL);
			if (val == NULL)
				return cli_usage("process", NULL);
			free(env->sender);
			env->sender = cli_process_addr(val, true);
			if (env->sender == NULL) {
				cli_error("process: bad --from address '%s'", val);
				return 2;
			}
		} else if (strncmp(a, "--to", 4) == 0 && (a[4] == '\0' || a[4] == '=')) {
			in_to = a[4] == '\0';
			if (a[4] == '=') {
				addr = cli_process_addr(a + 5, false);
				if (addr == NULL) {
					cli_error("process: bad --to address '%s'", a + 5);
					return 2;
				}
				spool_env_add_rcpt(env, addr, NULL, 0);
				free(addr);
			} else if (i + 1 >= argc) {
				return cli_usage("process", NULL);
			}
		} else if (strncmp(a, "--out-dir", 9) == 0 && (a[9] == '\0' || a[9] == '=')) {
			in_to = false;
			val = a[9] == '=' ? a + 10 : (i + 1 < argc ? argv[++i] : NULL);
			if (val == NULL || val[0] == '\0')
				return cli_usage("process", NULL);
			*dir_r = val;
		} else if (a[0] == '-' && a[1] != '\0') {
			cli_error("process: unknown option '%s'", a);
			return cli_usage("process", NULL);
		} else if (in_to && (addr = cli_process_addr(a, false)) != NULL &&
			!(i == argc - 1 && env->nrcpts > 0 && access(a, F_OK) == 0)) {
			/* --to takes every following address; the last word is FILE
			 * when it names an existing file */
			spool_env_add_rcpt(env, addr, NULL, 0);
			free(addr);
		} else if (in_to && env->nrcpts == 0) {
			cli_error("process: bad --to address '%s'", a);
			return 2;
		} else {
			if (*file_r != NULL) {
				cli_error("process: more than one input file ('%s', '%s')",
					*file_r, a);
				return 2;
			}
			in_to = false;
			*file_r = a;
		}
	}
	if (env->sender == NULL || env->nrcpts == 0 || *dir_r == NULL) {
		cli_error("process: --from, --to and --out-dir are required");
		return cli_usage("process", NULL);
	}
	return 0;
}

static int cli_process(struct cli_ctx *ctx, int argc, char **argv)
{
	struct spool_env env;
	struct cli_process_out po = {NULL, 0};
	struct mpa_conf conf;
	struct mpa *mpa = NULL;
	struct sg_error err;
	const char *file = NULL;
	bool pdf_ready = false;
	int fd = -1, rc;

	memset(&env, 0, sizeof(env));
	memset(&conf, 0, sizeof(conf));
	rc = cli_process_args(argc, argv, &env, &po.dir, &file);
	if (rc != 0)
		goto out;
	rc = 1;
	env.kind = SPOOL_KIND_MESSAGE;
	env.arrival = sg_now();
	conf.cfg = ctx->cfg;
	/* policy needs the database; without a configuration file the offline
	 * run does not create one */
	if (ctx->config_path != NULL) {
		conf.db = cli_db(ctx);
		if (conf.db == NULL)
			goto out;
		/* the PDF method (once, before rendering); without fonts only
		 * PDF recipients fail (closed), the rest still works */
		if (pdf_init(&err) < 0)
			cli_error("process: %s", err.msg);
		else
			pdf_ready = true;
	}
	if (cli_process_max_size(conf.db, ctx->cfg->hostname, &conf.max_size, &err) < 0) {
		cli_error("process: mta settings: %s", err.msg);
		goto out;
	}
	fd = cli_process_open(file, &err);
	if (fd < 0) {
		cli_error("process: %s", err.msg);
		goto out;
	}
	if (sg_mkdir_p(po.dir, 0755, &err) < 0) {
		cli_error("process: %s", err.msg);
		goto out;
	}
	mpa = mpa_new(&conf, &err);
	if (mpa == NULL) {
		cli_error("process: %s", err.msg);
		goto out;
	}
	if (mpa_process_stream(mpa, &env, fd, cli_process_output, &po, &err) < 0) {
		cli_error("process: %s", err.msg);
		goto out;
	}
	rc = 0;
out:
	mpa_free(&mpa);
	if (pdf_ready)
		pdf_deinit();
	if (fd >= 0)
		close(fd);
	spool_env_free_fields(&env);
	return rc;
}

static const struct cli_command cli_process_commands[] = {
	{"process", NULL, cli_process, "--from ADDR --to ADDR... --out-dir DIR [FILE]",
		"run the processing pipeline on one message offline (FILE or stdin)"},
};
CLI_REGISTER(cli_process_commands)
