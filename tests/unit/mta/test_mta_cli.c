/*
 * test_mta_cli.c - F-ADM-5 `sealgate mta show|set|sasl` run as the built
 * program ($SG_BUILD/sealgate) against a temp SQLite database: listing as
 * text and JSON, atomic `mta set` with the bad setting named on stderr and a
 * non-zero exit, SASL passwords read from stdin or a file and never printed
 * without --reveal.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "lib/lib.h"

static char tmpdir[256];
static char conf[320];
static char sealgate[1024];

struct run {
	int status;     /* exit status, -1 when killed */
	char out[65536];
	char err[8192];
};

static int group_setup(void **state)
{
	const char *build = getenv("SG_BUILD");
	char text[1024];
	FILE *fp;

	(void)state;
	snprintf(sealgate, sizeof(sealgate), "%s/sealgate", build != NULL ? build : ".");
	if (access(sealgate, X_OK) != 0) {
		fprintf(stderr, "%s not built\n", sealgate);
		return -1;
	}
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/sg-test-mta-cli-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(conf, sizeof(conf), "%s/sealgate.conf", tmpdir);
	snprintf(text, sizeof(text), "[general]\ndata_dir = %s/data\n"
		"database = sqlite:%s/sg.db\nhostname = gw.example\n", tmpdir, tmpdir);
	fp = fopen(conf, "w");
	if (fp == NULL)
		return -1;
	fputs(text, fp);
	return fclose(fp) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
	char *argv[] = {"rm", "-rf", tmpdir, NULL};
	int status = -1;
	pid_t pid;

	(void)state;
	pid = fork();
	if (pid == 0) {
		execvp(argv[0], argv);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* drain - read fd to EOF into buf (truncated, NUL-terminated). */
static void drain(int fd, char *buf, size_t bufsz)
{
	size_t len = 0;

	for (;;) {
		char tmp[4096];
		ssize_t n = read(fd, tmp, sizeof(tmp));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (len + 1 < bufsz) {
			size_t k = (size_t)n < bufsz - 1 - len ? (size_t)n : bufsz - 1 - len;

			memcpy(buf + len, tmp, k);
			len += k;
		}
	}
	buf[len] = '\0';
}

/* sg_run - run sealgate -c CONF args... with stdin from `input` (may be
 * NULL = /dev/null); stdout and stderr captured (stderr to a file so the two
 * pipes cannot deadlock). */
static void sg_run(struct run *r, const char *input, ...)
{
	char *argv[32];
	char errpath[320];
	int in[2], out[2];
	int argc = 0, status, efd;
	const char *a;
	va_list ap;
	pid_t pid;

	argv[argc++] = sealgate;
	argv[argc++] = "-c";
	argv[argc++] = conf;
	va_start(ap, input);
	while ((a = va_arg(ap, const char *)) != NULL && argc < 31)
		argv[argc++] = (char *)a;
	va_end(ap);
	argv[argc] = NULL;
	snprintf(errpath, sizeof(errpath), "%s/stderr", tmpdir);
	assert_int_equal(pipe(in), 0);
	assert_int_equal(pipe(out), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		efd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(in[0], 0);
		dup2(out[1], 1);
		dup2(efd, 2);
		close(in[1]);
		close(out[0]);
		execv(sealgate, argv);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	if (input != NULL)
		assert_int_equal(write(in[1], input, strlen(input)), (ssize_t)strlen(input));
	close(in[1]);
	drain(out[0], r->out, sizeof(r->out));
	close(out[0]);
	while (waitpid(pid, &status, 0) < 0)
		assert_int_equal(errno, EINTR);
	r->status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	efd = open(errpath, O_RDONLY);
	assert_true(efd >= 0);
	drain(efd, r->err, sizeof(r->err));
	close(efd);
}

#define SG_RUN(r, input, ...) sg_run(r, input, __VA_ARGS__, (const char *)NULL)

static void expect_ok(const struct run *r)
{
	if (r->status != 0)
		fail_msg("exit %d, stderr: %s", r->status, r->err);
}

/* F-ADM-5: `mta show` lists every setting with its factory value. */
static void test_show_defaults(void **state)
{
	struct run *r = calloc(1, sizeof(*r));

	(void)state;
	SG_RUN(r, NULL, "mta", "show");
	expect_ok(r);
	assert_non_null(strstr(r->out, "relay_domains = none\n"));
	assert_non_null(strstr(r->out, "my_networks = 127.0.0.0/8, ::1/128\n"));
	assert_non_null(strstr(r->out, "hostname = gw.example\n"));
	assert_non_null(strstr(r->out, "max_queue_lifetime = 432000\n"));
	assert_non_null(strstr(r->out, "tls_level = may\n"));
	free(r);
}

/* F-ADM-5: `mta set` stores several settings; `mta show --json` reads them. */
static void test_set_then_show_json(void **state)
{
	struct run *r = calloc(1, sizeof(*r));
	json_error_t jerr;
	json_t *root;

	(void)state;
	SG_RUN(r, NULL, "mta", "set", "relay_domains=Example.COM,example.org",
		"my_networks=10.0.0.0/8 ::1/128", "internal_relay=[127.0.0.1]:2525",
		"max_recipients=20", "reject_unverified_recipient=yes");
	expect_ok(r);
	SG_RUN(r, NULL, "mta", "show", "--json");
	expect_ok(r);
	root = json_loads(r->out, 0, &jerr);
	if (root == NULL)
		fail_msg("not JSON (%s): %s", jerr.text, r->out);
	assert_string_equal(json_string_value(json_array_get(
		json_object_get(root, "relay_domains"), 0)), "example.com");
	assert_int_equal(json_array_size(json_object_get(root, "my_networks")), 2);
	assert_string_equal(json_string_value(json_object_get(root, "internal_relay_host")),
		"127.0.0.1:2525");
	assert_int_equal(json_integer_value(json_object_get(root, "max_recipients")), 20);
	assert_true(json_is_true(json_object_get(root, "reject_unverified_recipient")));
	json_decref(root);
	free(r);
}

/* F-ADM-5: a bad value makes `mta set` exit non-zero naming the setting and
 * store none of the given settings. */
static void test_set_atomic_and_named(void **state)
{
	struct run *r = calloc(1, sizeof(*r));

	(void)state;
	SG_RUN(r, NULL, "mta", "set", "max_recipients=30", "my_networks=10.0.0.0/33");
	assert_int_equal(r->status, 1);
	assert_non_null(strstr(r->err, "my_networks"));
	assert_non_null(strstr(r->err, "nothing was changed"));
	SG_RUN(r, NULL, "mta", "set", "nosuch=1");
	assert_int_equal(r->status, 1);
	assert_non_null(strstr(r->err, "unknown setting 'nosuch'"));
	SG_RUN(r, NULL, "mta", "set", "external_relay_host=[999.0.0.1]:25");
	assert_int_equal(r->status, 1);
	assert_non_null(strstr(r->err, "external_relay_host"));
	SG_RUN(r, NULL, "mta", "set", "before_filter_size=-10");
	assert_int_equal(r->status, 1);
	assert_non_null(strstr(r->err, "before_filter_size"));
	SG_RUN(r, NULL, "mta", "set");
	assert_int_equal(r->status, 2);
	assert_non_null(strstr(r->err, "usage: sealgate mta set"));

	SG_RUN(r, NULL, "mta", "show");
	expect_ok(r);
	assert_null(strstr(r->out, "max_recipients = 30\n"));
	assert_non_null(strstr(r->out, "max_recipients = 20\n")); /* from the test before */
	assert_non_null(strstr(r->out, "my_networks = 10.0.0.0/8, ::1/128\n"));
	free(r);
}

/* F-ADM-5: SASL passwords come from stdin or a file, are masked in every
 * listing unless --reveal, and can be removed. */
static void test_sasl_secret(void **state)
{
	struct run *r = calloc(1, sizeof(*r));
	char pwfile[320];
	FILE *fp;

	(void)state;
	SG_RUN(r, "Pa55word-stdin\n", "mta", "sasl", "set", "mail.example.com:587", "alice");
	expect_ok(r);
	snprintf(pwfile, sizeof(pwfile), "%s/pw", tmpdir);
	fp = fopen(pwfile, "w");
	assert_non_null(fp);
	fputs("Pa55word-file\n", fp);
	assert_int_equal(fclose(fp), 0);
	SG_RUN(r, NULL, "mta", "sasl", "set", "[2001:db8::1]:25", "bob", "--password-file",
		pwfile);
	expect_ok(r);
	SG_RUN(r, NULL, "mta", "set", "sasl.relay.example.net:2525=carol:Pa55word-set");
	expect_ok(r);

	SG_RUN(r, NULL, "mta", "show");
	expect_ok(r);
	assert_null(strstr(r->out, "Pa55word"));
	assert_non_null(strstr(r->out, "sasl.mail.example.com:587 = alice:***\n"));
	assert_non_null(strstr(r->out, "sasl.[2001:db8::1]:25 = bob:***\n"));
	assert_non_null(strstr(r->out, "sasl.relay.example.net:2525 = carol:***\n"));
	SG_RUN(r, NULL, "mta", "show", "--json");
	expect_ok(r);
	assert_null(strstr(r->out, "Pa55word"));
	assert_non_null(strstr(r->out, "\"***\""));
	SG_RUN(r, NULL, "mta", "show", "--reveal");
	expect_ok(r);
	assert_non_null(strstr(r->out, "sasl.mail.example.com:587 = alice:Pa55word-stdin\n"));
	assert_non_null(strstr(r->out, "sasl.[2001:db8::1]:25 = bob:Pa55word-file\n"));
	SG_RUN(r, NULL, "--reveal", "mta", "show", "--json");
	expect_ok(r);
	assert_non_null(strstr(r->out, "Pa55word-set"));

	SG_RUN(r, NULL, "mta", "sasl", "delete", "mail.example.com:587");
	expect_ok(r);
	SG_RUN(r, NULL, "mta", "sasl", "delete", "mail.example.com:587");
	assert_int_equal(r->status, 1);
	assert_non_null(strstr(r->err, "no credentials"));
	SG_RUN(r, NULL, "mta", "show");
	assert_null(strstr(r->out, "alice"));
	/* no password on stdin, bad user name, bad usage */
	SG_RUN(r, NULL, "mta", "sasl", "set", "mail.example.com:587", "alice");
	assert_int_equal(r->status, 1);
	SG_RUN(r, "pw\n", "mta", "sasl", "set", "mail.example.com:587", "al:ice");
	assert_int_equal(r->status, 1);
	SG_RUN(r, NULL, "mta", "sasl", "set", "mail.example.com");
	assert_int_equal(r->status, 2);
	SG_RUN(r, NULL, "mta", "sasl", "delete");
	assert_int_equal(r->status, 2);
	/* short form without "set", as in the admin guide */
	SG_RUN(r, "Pa55word-short\n", "mta", "sasl", "short.example.com", "dave");
	expect_ok(r);
	SG_RUN(r, NULL, "mta", "show", "--reveal");
	assert_non_null(strstr(r->out, "sasl.short.example.com:25 = dave:Pa55word-short\n"));
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_show_defaults),
		cmocka_unit_test(test_set_then_show_json),
		cmocka_unit_test(test_set_atomic_and_named),
		cmocka_unit_test(test_sasl_secret),
	};

	return cmocka_run_group_tests_name("mta-cli", tests, group_setup, group_teardown);
}
