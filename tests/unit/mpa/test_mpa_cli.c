/* test_mpa_cli.c - the built `sealgate process` binary (SPEC §13): real
 * messages (interop corpus, by path) and edge cases come out as DIR/1.eml,
 * byte-identical, with DIR/1.json {"from", "to", "kind"}; bad arguments and
 * bad input exit non-zero with a message on stderr. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <sys/wait.h>

#include <jansson.h>

#include "mpa_test.h"

static char *sealgate_bin;
static char *corpus_dir;

/* run - sealgate argv... with stdin from in_path (or /dev/null), stderr to
 * err_path; returns the exit status. */
static int run(const char *in_path, const char *err_path, const char *const *args)
{
	const char *argv[32];
	pid_t pid;
	int st, i;

	argv[0] = sealgate_bin;
	for (i = 0; args[i] != NULL && i < 30; i++)
		argv[i + 1] = args[i];
	argv[i + 1] = NULL;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int in = open(in_path ? in_path : "/dev/null", O_RDONLY);
		int out = open("/dev/null", O_WRONLY);
		int er = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (in < 0 || out < 0 || er < 0)
			_exit(127);
		dup2(in, 0);
		dup2(out, 1);
		dup2(er, 2);
		unsetenv("SEALGATE_CONF");
		execv(sealgate_bin, (char *const *)argv);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static char *read_file(const char *path, size_t *len_r)
{
	char *data = NULL;
	struct sg_error err;

	if (sg_file_read(path, 64u << 20, &data, len_r, &err) < 0)
		return NULL;
	return data;
}

/* check_json - DIR/N.json is exactly the envelope we gave. */
static void check_json(const char *dir, unsigned n, const char *from,
	const char *const *to, size_t nto, const char *kind)
{
	char path[4096];
	json_error_t jerr;
	json_t *o, *a;
	size_t i;

	snprintf(path, sizeof(path), "%s/%u.json", dir, n);
	o = json_load_file(path, 0, &jerr);
	if (o == NULL)
		fail_msg("%s: %s", path, jerr.text);
	assert_true(json_is_object(o));
	assert_int_equal(json_object_size(o), 3);
	assert_string_equal(json_string_value(json_object_get(o, "from")), from);
	assert_string_equal(json_string_value(json_object_get(o, "kind")), kind);
	a = json_object_get(o, "to");
	assert_true(json_is_array(a));
	assert_int_equal(json_array_size(a), nto);
	for (i = 0; i < nto; i++)
		assert_string_equal(json_string_value(json_array_get(a, i)), to[i]);
	json_decref(o);
}

/* check_same - DIR/1.eml equals the input file, and there is no 2.eml. */
static void check_same(const char *dir, const char *input)
{
	char path[4096];
	char *a, *b;
	size_t alen = 0, blen = 0;

	snprintf(path, sizeof(path), "%s/1.eml", dir);
	a = read_file(path, &alen);
	b = read_file(input, &blen);
	assert_non_null(a);
	assert_non_null(b);
	if (alen != blen || memcmp(a, b, alen) != 0)
		fail_msg("%s: output differs from input (%zu vs %zu bytes)", input, alen, blen);
	free(a);
	free(b);
	snprintf(path, sizeof(path), "%s/2.eml", dir);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(mt_count(dir, "."), 2);
}

static const char *const corpus_files[] = {
	"03-real-clients/outlook-simplejavamail/outlook-2021-signed-actalis-attachments.eml",
	"03-real-clients/thunderbird52-simplejavamail/tb52-signed-encrypted.eml",
	"02-thunderbird-nss/smime/alice.env.dsig.SHA256.multipart.dave.sig.SHA256.opaque.eml",
	"02-thunderbird-nss/browser-smime/nested-sigs.eml",
	"07-lamps-header-protection/smime-sign+enc.eml",
	"10-rfc4134/4.5-signed-rsa-all.eml",
};

static void test_corpus_byte_identical(void **state)
{
	size_t c;

	(void)state;
	for (c = 0; c < sizeof(corpus_files) / sizeof(corpus_files[0]); c++) {
		char *tmp = mt_tmpdir();
		char *out = sg_xasprintf("%s/out", tmp);
		char *errp = sg_xasprintf("%s/stderr", tmp);
		char *in = sg_xasprintf("%s/%s", corpus_dir, corpus_files[c]);
		const char *to[] = {"bob@example.org", "carol@example.net"};
		const char *args[] = {"process", "--from", "alice@example.com", "--to", to[0],
			to[1], "--out-dir", out, in, NULL};

		if (access(in, R_OK) != 0)
			fail_msg("corpus file missing: %s", in);
		assert_int_equal(run(NULL, errp, args), 0);
		check_same(out, in);
		check_json(out, 1, "alice@example.com", to, 2, "message");
		mt_rm_rf(tmp);
		free(tmp);
		free(out);
		free(errp);
		free(in);
	}
}

static const struct {
	const char *name;
	const char *data;
	size_t len;
} edge_cases[] = {
	{"CRLF", "From: a@example.com\r\nSubject: c\r\n\r\nbody\r\n", 0},
	{"no trailing newline", "From: a@example.com\n\nno newline at end", 0},
	{"8bit and binary", "From: a@example.com\n\n\xff\x00\xfe\xc3\xa4\r\n\x00", 27},
	{"headers only", "Subject: nothing else\n", 0},
	{"broken MIME", "Content-Type: multipart/mixed; boundary=x\n\n--x\n\n--y--\n", 0},
	{"invalid UTF-8 header", "Subject: \xc3\x28 \xa0\xa1\n\nx\n", 0},
};

/* Edge cases through FILE and through stdin; --to given three ways. */
static void test_edge_cases_file_and_stdin(void **state)
{
	size_t c;

	(void)state;
	for (c = 0; c < sizeof(edge_cases) / sizeof(edge_cases[0]); c++) {
		char *tmp = mt_tmpdir();
		char *in = sg_xasprintf("%s/in.eml", tmp);
		char *out1 = sg_xasprintf("%s/o1", tmp), *out2 = sg_xasprintf("%s/o2", tmp);
		char *errp = sg_xasprintf("%s/stderr", tmp);
		size_t len = edge_cases[c].len ? edge_cases[c].len : strlen(edge_cases[c].data);
		const char *to[] = {"x@example.org", "y@example.org"};
		const char *a1[] = {"process", "--to=x@example.org", "--from", "<>",
			"--to", "<y@example.org>", "--out-dir", out1, in, NULL};
		const char *a2[] = {"process", "--from=s@example.com", "--to", to[0], to[1],
			"--out-dir", out2, NULL};
		int fd = open(in, O_WRONLY | O_CREAT | O_EXCL, 0600);

		assert_true(fd >= 0);
		assert_int_equal(sg_write_all(fd, edge_cases[c].data, len), 0);
		close(fd);
		if (run(NULL, errp, a1) != 0)
			fail_msg("%s: file: non-zero exit", edge_cases[c].name);
		check_same(out1, in);
		check_json(out1, 1, "", to, 2, "message");
		if (run(in, errp, a2) != 0)
			fail_msg("%s: stdin: non-zero exit", edge_cases[c].name);
		check_same(out2, in);
		check_json(out2, 1, "s@example.com", to, 2, "message");
		mt_rm_rf(tmp);
		free(tmp);
		free(in);
		free(out1);
		free(out2);
		free(errp);
	}
}

/* Bad arguments and input: non-zero exit, a message on stderr, no output. */
static void test_bad_usage(void **state)
{
	char *tmp = mt_tmpdir();
	char *out = sg_xasprintf("%s/out", tmp);
	char *errp = sg_xasprintf("%s/stderr", tmp);
	char *missing = sg_xasprintf("%s/missing.eml", tmp);
	const char *const cases[][12] = {
		{"process", "--to", "b@example.org", "--out-dir", out, NULL},
		{"process", "--from", "a@example.com", "--out-dir", out, NULL},
		{"process", "--from", "a@example.com", "--to", "b@example.org", NULL},
		{"process", "--from", "not an address", "--to", "b@example.org", "--out-dir",
			out, NULL},
		{"process", "--from", "a@example.com", "--to", "b@", "--out-dir", out, NULL},
		{"process", "--from", "a@example.com", "--to", "b@example.org", "--out-dir",
			out, missing, NULL},
		{"process", "--from", "a@example.com", "--to", "b@example.org", "--out-dir",
			out, tmp, NULL},
		{"process", "--from", "a@example.com", "--to", "b@example.org", "--bogus",
			"--out-dir", out, NULL},
		{"process", "--from", "a@example.com", "--to", "b@example.org", "--out-dir",
			out, "/etc/hostname", "/etc/hostname", NULL},
	};
	size_t c;

	(void)state;
	for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		char *text;
		size_t len = 0;

		if (run(NULL, errp, cases[c]) == 0)
			fail_msg("case %zu: exit 0", c);
		text = read_file(errp, &len);
		assert_non_null(text);
		if (strstr(text, "sealgate") == NULL)
			fail_msg("case %zu: no message on stderr", c);
		free(text);
		assert_true(mt_count(out, ".") <= 0);
	}
	mt_rm_rf(tmp);
	free(tmp);
	free(out);
	free(errp);
	free(missing);
}

int main(void)
{
	const char *build = getenv("SG_BUILD"), *src = getenv("SG_SRC");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_corpus_byte_identical),
		cmocka_unit_test(test_edge_cases_file_and_stdin),
		cmocka_unit_test(test_bad_usage),
	};
	int rc;

	if (build == NULL || src == NULL) {
		fprintf(stderr, "SG_BUILD and SG_SRC must be set (run under ctest)\n");
		return 1;
	}
	sealgate_bin = sg_xasprintf("%s/sealgate", build);
	corpus_dir = sg_xasprintf("%s/../shared/interop-corpus", src);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	free(sealgate_bin);
	free(corpus_dir);
	return rc;
}
