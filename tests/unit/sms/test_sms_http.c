/*
 * test_sms_http.c - F-SMS-2 HTTP(S) transport against an in-process HTTP
 * server on 127.0.0.1: POST and GET requests carry the expanded, URL-encoded
 * parameters; 2xx = sent (row deleted); 4xx = permanent (failed, not
 * retried); 5xx, 429, connection refused and a timeout = temporary (queued
 * with backoff, then sent); the Clickatell preset's parameters and body
 * check; basic authentication; the proxy setting (request goes to the proxy,
 * with proxy credentials); configured success codes. Runs on SQLite.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <cmocka.h>

#include <curl/curl.h>

#include "sms_test.h"
#include "store_test_pg.h"

struct hfx {
	struct stest_fx *f;
	struct thttp *h;
	char url[128];
};

static int hsetup(void **state)
{
	struct hfx *x = calloc(1, sizeof(*x));
	void *fs = NULL;

	if (x == NULL || stest_setup(&fs) < 0)
		return -1;
	x->f = fs;
	x->h = calloc(1, sizeof(*x->h));
	if (x->h == NULL || thttp_start(x->h) < 0)
		return -1;
	snprintf(x->url, sizeof(x->url), "http://127.0.0.1:%u/send", x->h->port);
	stest_set(x->f->db, "transport", "http");
	stest_set(x->f->db, "http.url", x->url);
	*state = x;
	return 0;
}

static int hteardown(void **state)
{
	struct hfx *x = *state;
	void *fs = x->f;

	thttp_stop(x->h);
	free(x->h);
	stest_teardown(&fs);
	free(x);
	return 0;
}

/* run - sms_run_due at now with the stored settings; asserts success */
static struct sms_run_stats run(struct hfx *x, int64_t now)
{
	struct sms_run_stats st;
	struct sg_error err;

	if (sms_run_due(x->f->db, NULL, now, 0, &st, &err) < 0)
		fail_msg("sms_run_due: %s", err.msg);
	return st;
}

static int64_t enqueue(struct hfx *x, const char *phone, const char *text)
{
	struct sg_error err;
	int64_t id;

	if (sms_enqueue(x->f->db, phone, text, NULL, &id, &err) < 0)
		fail_msg("enqueue: %s", err.msg);
	return id;
}

static void get_entry(struct hfx *x, int64_t id, struct sms_entry *e)
{
	struct sg_error err;

	if (sms_get(x->f->db, id, e, &err) != 1)
		fail_msg("sms %lld is gone", (long long)id);
}

static void assert_gone(struct hfx *x, int64_t id)
{
	struct sg_error err;
	struct sms_entry e;

	assert_int_equal(sms_get(x->f->db, id, &e, &err), 0);
}

static void test_post_success(void **state)
{
	struct hfx *x = *state;
	const struct thttp_reply r[] = {{200, "OK", 0, NULL}};
	struct sms_run_stats st;
	char req[THTTP_REQ_MAX];
	int64_t id;

	thttp_script(x->h, r, 1);
	id = enqueue(x, "+31 6 1234 5678", "Your password: pa ss&=1 ü");
	st = run(x, sg_now());
	assert_int_equal(st.sent, 1);
	assert_gone(x, id);
	assert_int_equal(thttp_count(x->h), 1);
	thttp_request(x->h, 0, req, sizeof(req));
	assert_true(strncmp(req, "POST /send HTTP/1.1\r\n", 21) == 0);
	assert_non_null(strcasestr(req, "\r\nContent-Type: application/x-www-form-urlencoded"));
	assert_non_null(strstr(req, "\r\n\r\nto=%2B31612345678&text=Your%20password%3A%20pa"
		"%20ss%26%3D1%20%C3%BC"));
	assert_null(strcasestr(req, "\r\nAuthorization:"));
}

static void test_get_params_and_empty_placeholder(void **state)
{
	struct hfx *x = *state;
	const struct thttp_reply r[] = {{200, "queued", 0, NULL}};
	const char *a[] = {"http.method=get",
		"http.params=user=${username}&pw=${password}&to=${number_digits}&msg=${text}"
			"&from=${from}&ref=sg-${id}",
		"http.username=alice", "http.password=p@ss word", "http.url="};
	char url[160], req[THTTP_REQ_MAX], want[256];
	struct sg_error err;
	struct sms_run_stats st;
	int64_t id;

	/* a URL with a query already: parameters are appended with '&' */
	snprintf(url, sizeof(url), "http.url=%s?v=2", x->url);
	a[4] = url;
	assert_int_equal(sms_settings_update(x->f->db, a, 5, &err), 0);
	thttp_script(x->h, r, 1);
	id = enqueue(x, "+4420 7946 0000", "hi");
	st = run(x, sg_now());
	assert_int_equal(st.sent, 1);
	thttp_request(x->h, 0, req, sizeof(req));
	/* from is empty and a lone placeholder: left out */
	snprintf(want, sizeof(want), "GET /send?v=2&user=alice&pw=p%%40ss%%20word&"
		"to=442079460000&msg=hi&ref=sg-%lld HTTP/1.1\r\n", (long long)id);
	if (strncmp(req, want, strlen(want)) != 0)
		fail_msg("got request\n%s\nwant it to start with\n%s", req, want);
}

static void test_4xx_permanent(void **state)
{
	struct hfx *x = *state;
	const struct thttp_reply r[] = {{400, "Invalid destination", 0, NULL}};
	struct sms_run_stats st;
	struct sms_entry e;
	int64_t id, now;

	thttp_script(x->h, r, 1);
	id = enqueue(x, "+31612345678", "x");
	now = sg_now();
	st = run(x, now);
	assert_int_equal(st.failed, 1);
	get_entry(x, id, &e);
	assert_int_equal(e.status, SMS_ST_FAILED);
	assert_int_equal(e.attempts, 1);
	assert_string_equal(e.last_error, "HTTP 400: Invalid destination");
	sms_entry_deinit(&e);
	/* never retried by itself */
	st = run(x, now + 7 * 86400);
	assert_int_equal(st.sent + st.deferred + st.failed, 0);
	assert_int_equal(thttp_count(x->h), 1);
}

static void test_5xx_retry_with_backoff(void **state)
{
	struct hfx *x = *state;
	const struct thttp_reply r[] = {{503, "busy", 0, NULL}, {429, "slow down", 0, NULL},
		{200, "OK", 0, NULL}};
	struct sms_run_stats st;
	struct sms_entry e;
	int64_t id, now;

	stest_set(x->f->db, "backoff_min", "30");
	thttp_script(x->h, r, 3);
	id = enqueue(x, "+31612345678", "x");
	now = sg_now();
	st = run(x, now);
	assert_int_equal(st.deferred, 1);
	get_entry(x, id, &e);
	assert_int_equal(e.status, SMS_ST_QUEUED);
	assert_int_equal(e.next_attempt, now + 30);
	assert_string_equal(e.last_error, "HTTP 503: busy");
	sms_entry_deinit(&e);
	st = run(x, now + 29);
	assert_int_equal(st.sent + st.deferred + st.failed, 0);
	assert_int_equal(thttp_count(x->h), 1);
	st = run(x, now + 30);
	assert_int_equal(st.deferred, 1);
	get_entry(x, id, &e);
	assert_int_equal(e.attempts, 2);
	assert_int_equal(e.next_attempt, now + 30 + 60);
	assert_string_equal(e.last_error, "HTTP 429: slow down");
	sms_entry_deinit(&e);
	st = run(x, now + 90);
	assert_int_equal(st.sent, 1);
	assert_gone(x, id);
	assert_int_equal(thttp_count(x->h), 3);
}

static void test_timeout_retry(void **state)
{
	struct hfx *x = *state;
	const struct thttp_reply r[] = {{200, "late", 3000, NULL}, {200, "OK", 0, NULL}};
	struct sms_run_stats st;
	struct sms_entry e;
	int64_t id, now, t0;

	stest_set(x->f->db, "http.timeout", "1");
	thttp_script(x->h, r, 2);
	id = enqueue(x, "+31612345678", "x");
	now = sg_now();
	t0 = sg_mono_ms();
	st = run(x, now);
	assert_true(sg_mono_ms() - t0 < 2900);  /* gave up at the timeout */
	assert_int_equal(st.deferred, 1);
	get_entry(x, id, &e);
	assert_int_equal(e.status, SMS_ST_QUEUED);
	if (strstr(e.last_error, "timed out") == NULL)
		fail_msg("last_error '%s' does not name the timeout", e.last_error);
	assert_int_equal(e.next_attempt, now + 60);
	sms_entry_deinit(&e);
	st = run(x, now + 60);
	assert_int_equal(st.sent, 1);
	assert_gone(x, id);
}

static void test_connection_refused_retry(void **state)
{
	struct hfx *x = *state;
	struct sms_run_stats st;
	struct sms_entry e;
	int64_t id;

	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	char url[96];
	int fd;

	/* a bound socket that does not listen: connections are refused */
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/send", ntohs(a.sin_port));
	stest_set(x->f->db, "http.url", url);
	id = enqueue(x, "+31612345678", "x");
	st = run(x, sg_now());
	assert_int_equal(st.deferred, 1);
	get_entry(x, id, &e);
	if (strstr(e.last_error, "http transport: ") == NULL ||
		strstr(e.last_error, "onnect") == NULL)
		fail_msg("last_error '%s' does not name the connection failure", e.last_error);
	sms_entry_deinit(&e);
	close(fd);
}

static void test_clickatell_preset_body_check(void **state)
{
	struct hfx *x = *state;
	const struct thttp_reply r[] = {{200, "ERR: 001, Authentication failed", 0, NULL},
		{200, "ID: 2f3a9c", 0, NULL}};
	const char *a[] = {"transport=clickatell", "http.api_id=3381", "http.username=gw",
		"http.password=Clk-Secret", "http.from=Sealgate"};
	struct sms_run_stats st;
	struct sms_entry e;
	struct sg_error err;
	char req[THTTP_REQ_MAX];
	int64_t id, now;

	/* http.url stays pointed at the local server (set by the fixture) */
	assert_int_equal(sms_settings_update(x->f->db, a, 5, &err), 0);
	thttp_script(x->h, r, 2);
	id = enqueue(x, "+31612345678", "Password: x");
	now = sg_now();
	st = run(x, now);
	assert_int_equal(st.deferred, 1);
	get_entry(x, id, &e);
	assert_non_null(strstr(e.last_error, "does not match"));
	assert_non_null(strstr(e.last_error, "ERR: 001, Authentication failed"));
	assert_null(strstr(e.last_error, "Clk-Secret"));
	sms_entry_deinit(&e);
	thttp_request(x->h, 0, req, sizeof(req));
	assert_non_null(strstr(req, "\r\n\r\napi_id=3381&user=gw&password=Clk-Secret&"
		"to=31612345678&text=Password%3A%20x&from=Sealgate"));
	st = run(x, now + 60);
	assert_int_equal(st.sent, 1);
	assert_gone(x, id);
}

static void test_basic_auth(void **state)
{
	struct hfx *x = *state;
	const struct thttp_reply r[] = {{202, "", 0, NULL}};
	const char *a[] = {"http.auth=basic", "http.username=alice",
		"http.password=open sesame"};
	struct sg_error err;
	char req[THTTP_REQ_MAX];

	assert_int_equal(sms_settings_update(x->f->db, a, 3, &err), 0);
	thttp_script(x->h, r, 1);
	enqueue(x, "+31612345678", "x");
	assert_int_equal(run(x, sg_now()).sent, 1);
	thttp_request(x->h, 0, req, sizeof(req));
	/* base64("alice:open sesame") */
	assert_non_null(strstr(req, "\r\nAuthorization: Basic YWxpY2U6b3BlbiBzZXNhbWU=\r\n"));
}

static void test_proxy_honoured(void **state)
{
	struct hfx *x = *state;
	struct thttp *proxy = calloc(1, sizeof(*proxy));
	/* the proxy asks for credentials first (curl answers the challenge) */
	const struct thttp_reply r[] = {{407, "", 0, "Proxy-Authenticate: Basic realm=\"t\"\r\n"},
		{200, "OK via proxy", 0, NULL}};
	char set[96], req[THTTP_REQ_MAX];
	const char *a[] = {"http.url=http://sms-gateway.example.invalid/api/send", set,
		"http.proxy_username=px", "http.proxy_password=pxpw"};
	struct sg_error err;

	assert_non_null(proxy);
	assert_int_equal(thttp_start(proxy), 0);
	thttp_script(proxy, r, 2);
	snprintf(set, sizeof(set), "http.proxy=http://127.0.0.1:%u", proxy->port);
	assert_int_equal(sms_settings_update(x->f->db, a, 4, &err), 0);
	enqueue(x, "+31612345678", "x");
	assert_int_equal(run(x, sg_now()).sent, 1);
	/* the proxy got the absolute URL; the gateway itself was not contacted */
	assert_int_equal(thttp_count(proxy), 2);
	assert_int_equal(thttp_count(x->h), 0);
	thttp_request(proxy, 1, req, sizeof(req));
	assert_true(strncmp(req, "POST http://sms-gateway.example.invalid/api/send "
		"HTTP/1.1\r\n", 56) == 0);
	/* base64("px:pxpw") */
	assert_non_null(strstr(req, "\r\nProxy-Authorization: Basic cHg6cHhwdw==\r\n"));
	thttp_stop(proxy);
	free(proxy);
}

static void test_success_codes_setting(void **state)
{
	struct hfx *x = *state;
	const struct thttp_reply r[] = {{200, "", 0, NULL}, {201, "", 0, NULL}};
	struct sms_run_stats st;
	struct sms_entry e;
	int64_t id1, id2;

	stest_set(x->f->db, "http.success_codes", "201");
	thttp_script(x->h, r, 2);
	id1 = enqueue(x, "+31612345678", "one");
	st = run(x, sg_now());
	/* 200 is not listed: a status the gateway did not promise is permanent */
	assert_int_equal(st.failed, 1);
	get_entry(x, id1, &e);
	assert_string_equal(e.last_error, "HTTP 200: ");
	sms_entry_deinit(&e);
	id2 = enqueue(x, "+31612345678", "two");
	st = run(x, sg_now());
	assert_int_equal(st.sent, 1);
	assert_gone(x, id2);
}

/* https - a TLS server with a fresh self-signed certificate for 127.0.0.1;
 * the PEM file names into cert/key */
static struct thttp *https_start(char *cert, char *key, size_t sz)
{
	struct thttp *h = calloc(1, sizeof(*h));
	char *argv[] = {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
		"ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
		"-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert, NULL};

	snprintf(cert, sz, "%s/tls-cert.pem", stest_tmpdir());
	snprintf(key, sz, "%s/tls-key.pem", stest_tmpdir());
	if (h == NULL || run_cmd(argv, NULL, 0) != 0 || thttp_start_tls(h, cert, key) < 0)
		fail_msg("cannot start the HTTPS test server");
	return h;
}

static void test_https_verified_untrusted_unverified(void **state)
{
	struct hfx *x = *state;
	char cert[300], key[300], url[96], ca[340], req[THTTP_REQ_MAX];
	struct thttp *h = https_start(cert, key, sizeof(cert));
	const struct thttp_reply r[] = {{200, "OK", 0, NULL}};
	const char *a[2] = {url, ca};
	struct sms_run_stats st;
	struct sms_entry e;
	struct sg_error err;
	int64_t id, now;

	thttp_script(h, r, 1);
	snprintf(url, sizeof(url), "http.url=https://127.0.0.1:%u/tls", h->port);
	/* verified against the configured CA file */
	snprintf(ca, sizeof(ca), "http.ca_file=%s", cert);
	assert_int_equal(sms_settings_update(x->f->db, a, 2, &err), 0);
	id = enqueue(x, "+31612345678", "over tls");
	assert_int_equal(run(x, sg_now()).sent, 1);
	assert_gone(x, id);
	thttp_request(h, 0, req, sizeof(req));
	assert_non_null(strstr(req, "text=over%20tls"));
	/* without it the self-signed certificate is not trusted: deferred */
	stest_set(x->f->db, "http.ca_file", "");
	id = enqueue(x, "+31612345678", "x");
	now = sg_now();
	st = run(x, now);
	assert_int_equal(st.deferred, 1);
	get_entry(x, id, &e);
	if (strstr(e.last_error, "certificate") == NULL)
		fail_msg("last_error '%s' does not name the certificate", e.last_error);
	sms_entry_deinit(&e);
	/* tls_verify=no accepts it */
	stest_set(x->f->db, "http.tls_verify", "no");
	assert_int_equal(run(x, now + 60).sent, 1);
	assert_gone(x, id);
	thttp_stop(h);
	free(h);
}

static void test_huge_response_body(void **state)
{
	struct hfx *x = *state;
	size_t n = 300 * 1024;
	char *body = malloc(n + 1);
	struct sms_run_stats st;
	struct sms_entry e;
	struct thttp_reply r3[] = {{200, NULL, 0, NULL}, {200, NULL, 0, NULL},
		{503, NULL, 0, NULL}};
	int64_t id, now = sg_now();

	/* 300 KB answers: only the first 64 KB are kept (and matched) */
	assert_non_null(body);
	memcpy(body, "ID: ", 4);
	memset(body + 4, 'z', n - 4);
	body[n] = '\0';
	r3[0].body = r3[1].body = r3[2].body = body;
	/* more than 64 KB of 'z' cannot be seen: the body was capped */
	stest_set(x->f->db, "http.success_body", "z{65000}z{5000}");
	thttp_script(x->h, r3, 3);
	id = enqueue(x, "+31612345678", "x");
	st = run(x, now);
	assert_int_equal(st.deferred, 1);
	get_entry(x, id, &e);
	assert_non_null(strstr(e.last_error, "does not match"));
	sms_entry_deinit(&e);
	stest_set(x->f->db, "http.success_body", "^ID: z+$");
	st = run(x, now + 60);
	assert_int_equal(st.sent, 1);
	assert_gone(x, id);
	id = enqueue(x, "+31612345678", "y");
	st = run(x, sg_now());
	assert_int_equal(st.deferred, 1);
	get_entry(x, id, &e);
	/* the error carries a short, escaped excerpt only */
	assert_true(strlen(e.last_error) < 200);
	assert_true(strncmp(e.last_error, "HTTP 503: ID: zzz", 17) == 0);
	sms_entry_deinit(&e);
	free(body);
}

static void test_params_expand_errors(void **state)
{
	struct sms_settings *s = sms_settings_defaults();
	struct sms_transport *t;
	struct sg_error err;

	(void)state;
	/* incomplete settings are refused when the transport is opened */
	s->transport = SMS_TRANSPORT_HTTP;
	t = sms_transport_open(s, &err);
	assert_null(t);
	assert_int_equal(err.code, SG_E_CONFIG);
	assert_non_null(strstr(err.msg, "sms.http.url"));
	s->transport = SMS_TRANSPORT_NONE;
	assert_null(sms_transport_open(s, &err));
	assert_int_equal(err.code, SG_E_CONFIG);
	free(s->url);
	s->url = strdup("http://127.0.0.1:9/");
	s->transport = SMS_TRANSPORT_CLICKATELL;
	t = sms_transport_open(s, &err);
	assert_non_null(t);
	assert_string_equal(sms_transport_name(t), "clickatell");
	sms_transport_close(&t);
	sms_settings_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_post_success, hsetup, hteardown),
		cmocka_unit_test_setup_teardown(test_get_params_and_empty_placeholder, hsetup,
			hteardown),
		cmocka_unit_test_setup_teardown(test_4xx_permanent, hsetup, hteardown),
		cmocka_unit_test_setup_teardown(test_5xx_retry_with_backoff, hsetup, hteardown),
		cmocka_unit_test_setup_teardown(test_timeout_retry, hsetup, hteardown),
		cmocka_unit_test_setup_teardown(test_connection_refused_retry, hsetup, hteardown),
		cmocka_unit_test_setup_teardown(test_clickatell_preset_body_check, hsetup,
			hteardown),
		cmocka_unit_test_setup_teardown(test_basic_auth, hsetup, hteardown),
		cmocka_unit_test_setup_teardown(test_proxy_honoured, hsetup, hteardown),
		cmocka_unit_test_setup_teardown(test_success_codes_setting, hsetup, hteardown),
		cmocka_unit_test_setup_teardown(test_https_verified_untrusted_unverified, hsetup,
			hteardown),
		cmocka_unit_test_setup_teardown(test_huge_response_body, hsetup, hteardown),
		cmocka_unit_test(test_params_expand_errors),
	};
	int rc;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	sg_log_init("test_sms_http", SG_LOGDEST_STDERR, SG_LOG_ERR);
	rc = cmocka_run_group_tests(tests, stest_group_setup, stest_group_teardown);
	curl_global_cleanup();
	return rc;
}
