/* store_test_pg.c - see store_test_pg.h. */
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/lib.h"
#include "store/store.h"
#include "store_test_pg.h"

int run_cmd(char *const argv[], char *out, size_t outsz)
{
	int pfd[2];
	pid_t pid;
	size_t len = 0;
	int status;

	if (pipe(pfd) < 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(pfd[1], 1);
		close(pfd[0]);
		close(pfd[1]);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(pfd[1]);
	for (;;) {
		char tmp[512];
		ssize_t n = read(pfd[0], tmp, sizeof(tmp));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (out != NULL && len + 1 < outsz) {
			size_t k = (size_t)n;

			if (k > outsz - 1 - len)
				k = outsz - 1 - len;
			memcpy(out + len, tmp, k);
			len += k;
		}
	}
	close(pfd[0]);
	if (out != NULL && outsz > 0)
		out[len] = '\0';
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static const char *test_pg_script(char *buf, size_t bufsz)
{
	const char *src = getenv("SG_SRC");

	snprintf(buf, bufsz, "%s/scripts/test-pg", src != NULL ? src : "/work/main");
	return buf;
}

int pg_server_start(const char *dir, char *url, size_t urlsz)
{
	char script[1024];
	char *argv[] = {(char *)test_pg_script(script, sizeof(script)), "start",
		(char *)dir, NULL};
	size_t n;

	if (run_cmd(argv, url, urlsz) != 0) {
		fprintf(stderr, "test-pg start %s failed\n", dir);
		return -1;
	}
	n = strlen(url);
	while (n > 0 && (url[n - 1] == '\n' || url[n - 1] == '\r'))
		url[--n] = '\0';
	return n > 0 ? 0 : -1;
}

void pg_server_stop(const char *dir)
{
	char script[1024];
	char *argv[] = {(char *)test_pg_script(script, sizeof(script)), "stop",
		(char *)dir, NULL};

	run_cmd(argv, NULL, 0);
}

int pg_server_restart(const char *dir, const char *url)
{
	char pgctl[512], datadir[512], logf[512], opts[768];
	const char *portp = strrchr(url, ':');
	glob_t g;
	unsigned port;
	int rc;

	/* XXX: scripts/test-pg has no "restart"; this mirrors its "start" flags. */
	if (portp == NULL || sscanf(portp + 1, "%u", &port) != 1)
		return -1;
	if (glob("/usr/lib/postgresql/*/bin/pg_ctl", 0, NULL, &g) != 0)
		return -1;
	snprintf(pgctl, sizeof(pgctl), "%s", g.gl_pathv[g.gl_pathc - 1]);
	globfree(&g);
	snprintf(datadir, sizeof(datadir), "%s/data", dir);
	snprintf(logf, sizeof(logf), "%s/server.log", dir);
	snprintf(opts, sizeof(opts), "-c listen_addresses=127.0.0.1 -c port=%u "
		"-c unix_socket_directories=%s -c fsync=off -c max_connections=200", port, dir);
	if (getuid() == 0) {
		char *argv[] = {"runuser", "-u", "postgres", "--", pgctl, "-D", datadir,
			"-l", logf, "-w", "-t", "60", "-o", opts, "start", NULL};

		rc = run_cmd(argv, NULL, 0);
	} else {
		char *argv[] = {pgctl, "-D", datadir, "-l", logf, "-w", "-t", "60", "-o",
			opts, "start", NULL};

		rc = run_cmd(argv, NULL, 0);
	}
	return rc == 0 ? 0 : -1;
}

void pg_url_with_db(const char *url, const char *db, char *out, size_t outsz)
{
	const char *scheme = strstr(url, "://");
	const char *path = scheme != NULL ? strchr(scheme + 3, '/') : NULL;
	const char *query;

	if (path == NULL) {
		query = strchr(url, '?');
		if (query == NULL)
			snprintf(out, outsz, "%s/%s", url, db);
		else
			snprintf(out, outsz, "%.*s/%s%s", (int)(query - url), url, db, query);
		return;
	}
	query = strchr(path, '?');
	snprintf(out, outsz, "%.*s/%s%s", (int)(path - url), url, db,
		query != NULL ? query : "");
}

static int admin_exec(const char *admin_url, const char *sql)
{
	struct sg_error err;
	struct store *db = store_open(admin_url, &err);
	int rc;

	if (db == NULL) {
		fprintf(stderr, "admin connect: %s\n", err.msg);
		return -1;
	}
	rc = store_exec(db, sql, &err);
	if (rc < 0)
		fprintf(stderr, "%s: %s\n", sql, err.msg);
	store_close(&db);
	return rc;
}

int pg_db_create(const char *admin_url, const char *name)
{
	char sql[256];

	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
	return admin_exec(admin_url, sql);
}

int pg_db_drop(const char *admin_url, const char *name)
{
	char sql[256];

	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
	return admin_exec(admin_url, sql);
}

/* ------------------------------------------------ module test environment */

int store_test_env_begin(struct store_test_env *e, const char *name, bool is_pg)
{
	const char *env = getenv("SG_TEST_PG_URL");
	char dir[300];

	memset(e, 0, sizeof(*e));
	e->is_pg = is_pg;
	snprintf(e->tmpdir, sizeof(e->tmpdir), "/tmp/sg-test-%s-XXXXXX", name);
	if (mkdtemp(e->tmpdir) == NULL)
		return -1;
	if (!is_pg)
		return 0;
	if (env != NULL && *env != '\0') {
		snprintf(e->admin_url, sizeof(e->admin_url), "%s", env);
		return 0;
	}
	chmod(e->tmpdir, 0755);   /* the server runs as user postgres */
	snprintf(dir, sizeof(dir), "%s/pg", e->tmpdir);
	if (pg_server_start(dir, e->admin_url, sizeof(e->admin_url)) < 0)
		return -1;
	e->own_server = true;
	return 0;
}

void store_test_env_end(struct store_test_env *e)
{
	char *rm[] = {"rm", "-rf", e->tmpdir, NULL};
	char dir[300];

	if (e->own_server) {
		snprintf(dir, sizeof(dir), "%s/pg", e->tmpdir);
		pg_server_stop(dir);
	}
	run_cmd(rm, NULL, 0);
}

int store_test_db_open(struct store_test_env *e, const char *prefix,
	struct store_test_db *d)
{
	struct sg_error err;

	memset(d, 0, sizeof(*d));
	if (!e->is_pg) {
		snprintf(d->path, sizeof(d->path), "%s/t%u.db", e->tmpdir, e->seq++);
		snprintf(d->url, sizeof(d->url), "sqlite:%s", d->path);
	} else {
		unsigned char r[4];
		char hex[9];

		sg_random_bytes(r, sizeof(r), NULL);
		sg_hex(hex, r, sizeof(r));
		snprintf(d->dbname, sizeof(d->dbname), "%s_%d_%u_%s", prefix, (int)getpid(),
			e->seq++, hex);
		if (pg_db_create(e->admin_url, d->dbname) < 0)
			return -1;
		pg_url_with_db(e->admin_url, d->dbname, d->url, sizeof(d->url));
	}
	d->db = store_open(d->url, &err);
	if (d->db == NULL || store_init(d->db, &err) < 0) {
		fprintf(stderr, "store %s: %s\n", d->url, err.msg);
		store_close(&d->db);
		return -1;
	}
	return 0;
}

void store_test_db_drop(struct store_test_env *e, struct store_test_db *d)
{
	store_close(&d->db);
	if (e->is_pg)
		pg_db_drop(e->admin_url, d->dbname);
	else
		unlink(d->path);
}
