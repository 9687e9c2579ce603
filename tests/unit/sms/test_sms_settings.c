/*
 * test_sms_settings.c - F-SMS-2 settings: factory values, normalisation of
 * each kind, refusals naming the setting, all-or-nothing updates, the
 * backoff consistency rule, reset with "NAME=", the Clickatell preset, secrets
 * hidden in the text and JSON formats unless revealed, and an invalid stored
 * value. Built twice: SQLite (unit) and PostgreSQL (e2e).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "sms_test.h"

static struct sms_settings *load(struct store *db)
{
	struct sg_error err;
	struct sms_settings *s = sms_settings_load(db, &err);

	if (s == NULL)
		fail_msg("load: %s", err.msg);
	return s;
}

static void test_defaults(void **state)
{
	struct stest_fx *f = *state;
	struct sms_settings *s = load(f->db);

	assert_int_equal(s->transport, SMS_TRANSPORT_NONE);
	assert_string_equal(s->url, "");
	assert_true(s->is_post);
	assert_string_equal(s->params, "to=${number}&text=${text}");
	assert_false(s->is_basic_auth);
	assert_int_equal(s->timeout, 30);
	assert_int_equal(s->n_codes, 1);
	assert_int_equal(s->codes[0].lo, 200);
	assert_int_equal(s->codes[0].hi, 299);
	assert_string_equal(s->success_body, "");
	assert_true(s->is_tls_verify);
	assert_int_equal(s->backoff_min, 60);
	assert_int_equal(s->backoff_max, 3600);
	assert_int_equal(s->lifetime, 86400);
	sms_settings_free(&s);
	assert_null(s);
}

static void test_set_normalises(void **state)
{
	struct stest_fx *f = *state;
	struct sg_error err;
	struct sms_settings *s;
	char *v = NULL;
	const char *a[] = {
		"transport=HTTP", "sms.http.method=GET", "http.url=https://sms.example/api?x=1",
		"http.success_codes=200, 202-204", "backoff_min=2m", "backoff_max=2h",
		"lifetime=0", "http.tls_verify=off", "http.auth=Basic", "http.timeout=5",
		"http.success_body=^OK\\b",
	};

	assert_int_equal(sms_settings_update(f->db, a, sizeof(a) / sizeof(a[0]), &err), 0);
	s = load(f->db);
	assert_int_equal(s->transport, SMS_TRANSPORT_HTTP);
	assert_false(s->is_post);
	assert_string_equal(s->url, "https://sms.example/api?x=1");
	assert_int_equal(s->n_codes, 2);
	assert_int_equal(s->codes[1].lo, 202);
	assert_int_equal(s->codes[1].hi, 204);
	assert_int_equal(s->backoff_min, 120);
	assert_int_equal(s->backoff_max, 7200);
	assert_int_equal(s->lifetime, 0);
	assert_false(s->is_tls_verify);
	assert_true(s->is_basic_auth);
	assert_int_equal(s->timeout, 5);
	assert_string_equal(s->success_body, "^OK\\b");
	sms_settings_free(&s);
	/* stored normalised */
	assert_int_equal(store_setting_get(f->db, "sms.transport", &v, &err), 1);
	assert_string_equal(v, "http");
	free(v);
	assert_int_equal(store_setting_get(f->db, "sms.http.success_codes", &v, &err), 1);
	assert_string_equal(v, "200,202-204");
	free(v);
	assert_int_equal(store_setting_get(f->db, "sms.backoff_min", &v, &err), 1);
	assert_string_equal(v, "120");
	free(v);
	/* "NAME=" resets to the factory value */
	stest_set(f->db, "http.method", "");
	assert_int_equal(store_setting_get(f->db, "sms.http.method", &v, &err), 0);
	s = load(f->db);
	assert_true(s->is_post);
	sms_settings_free(&s);
}

static void test_refusals_all_or_nothing(void **state)
{
	struct stest_fx *f = *state;
	struct sg_error err;
	struct sms_settings *s;
	static const struct {
		const char *assignment, *want;
	} bad[] = {
		{"colour=red", "unknown SMS setting 'colour'"},
		{"transport", "want NAME=VALUE"},
		{"transport=carrier-pigeon", "sms.transport: bad value"},
		{"http.url=ftp://x.example/", "sms.http.url: bad value"},
		{"http.url=https://", "sms.http.url: bad value"},
		{"http.method=PUT", "sms.http.method"},
		{"http.timeout=0", "sms.http.timeout"},
		{"http.timeout=601", "sms.http.timeout"},
		{"http.success_codes=99", "sms.http.success_codes"},
		{"http.success_codes=300-200", "sms.http.success_codes"},
		{"http.success_body=(unclosed", "sms.http.success_body"},
		{"http.params=to=${phone}", "unknown placeholder '${phone}'"},
		{"http.params=to=${number", "unterminated"},
		{"http.params=novalue&to=${number}", "not NAME=VALUE"},
		{"http.username=a\nb", "control characters"},
		{"file.path=relative/path", "absolute path"},
		{"backoff_min=0", "sms.backoff_min"},
		{"backoff_min=2x", "sms.backoff_min"},
		{"lifetime=31d", "sms.lifetime"},
		{"backoff_max=30", "below sms.backoff_min"},
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		/* a valid assignment first: it must not be stored either */
		const char *a[2] = {"http.from=Sealgate", bad[i].assignment};

		if (sms_settings_update(f->db, a, 2, &err) == 0)
			fail_msg("'%s' accepted", bad[i].assignment);
		if (strstr(err.msg, bad[i].want) == NULL)
			fail_msg("'%s': message '%s' lacks '%s'", bad[i].assignment, err.msg,
				bad[i].want);
		assert_int_equal(err.code, SG_E_INVAL);
	}
	{
		const char *a[2] = {"transport=file", "sms.transport=http"};

		assert_int_equal(sms_settings_update(f->db, a, 2, &err), -1);
		assert_non_null(strstr(err.msg, "given twice"));
	}
	s = load(f->db);
	assert_string_equal(s->from, "");
	assert_int_equal(s->transport, SMS_TRANSPORT_NONE);
	sms_settings_free(&s);
	/* both backoffs in one update are checked together */
	{
		const char *a[2] = {"backoff_max=10", "backoff_min=10"};

		assert_int_equal(sms_settings_update(f->db, a, 2, &err), 0);
	}
}

static void test_clickatell_preset(void **state)
{
	struct stest_fx *f = *state;
	struct sms_settings *s;

	stest_set(f->db, "transport", "clickatell");
	s = load(f->db);
	assert_int_equal(s->transport, SMS_TRANSPORT_CLICKATELL);
	assert_string_equal(s->url, "https://api.clickatell.com/http/sendmsg");
	assert_non_null(strstr(s->params, "api_id=${api_id}"));
	assert_non_null(strstr(s->params, "to=${number_digits}"));
	assert_string_equal(s->success_body, "^ID:");
	sms_settings_free(&s);
	/* an explicit value wins over the preset */
	stest_set(f->db, "http.url", "http://127.0.0.1:9/x");
	s = load(f->db);
	assert_string_equal(s->url, "http://127.0.0.1:9/x");
	sms_settings_free(&s);
	/* with the generic transport the preset does not apply */
	stest_set(f->db, "transport", "http");
	s = load(f->db);
	assert_string_equal(s->success_body, "");
	assert_string_equal(s->params, "to=${number}&text=${text}");
	sms_settings_free(&s);
}

static void test_format_hides_secrets(void **state)
{
	struct stest_fx *f = *state;
	struct sg_error err;
	struct sms_settings *s;
	char *out;
	json_t *j;
	const char *a[] = {"http.password=S3cr3t-Pw", "http.proxy_password=Pr0xy-Pw",
		"http.username=alice", "http.timeout=7"};

	assert_int_equal(sms_settings_update(f->db, a, 4, &err), 0);
	s = load(f->db);
	out = sms_settings_format(s, SMS_PRINT_TEXT);
	assert_null(strstr(out, "S3cr3t-Pw"));
	assert_null(strstr(out, "Pr0xy-Pw"));
	assert_non_null(strstr(out, "http.password        = ***\n"));
	assert_non_null(strstr(out, "http.username        = alice\n"));
	assert_non_null(strstr(out, "http.timeout         = 7\n"));
	free(out);
	out = sms_settings_format(s, SMS_PRINT_JSON);
	assert_null(strstr(out, "S3cr3t-Pw"));
	j = json_loads(out, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "http.password")), "***");
	assert_int_equal(json_integer_value(json_object_get(j, "http.timeout")), 7);
	assert_true(json_is_true(json_object_get(j, "http.tls_verify")));
	assert_string_equal(json_string_value(json_object_get(j, "transport")), "none");
	assert_int_equal(json_object_size(j), 21);
	json_decref(j);
	free(out);
	out = sms_settings_format(s, SMS_PRINT_JSON | SMS_PRINT_REVEAL);
	assert_non_null(strstr(out, "S3cr3t-Pw"));
	assert_non_null(strstr(out, "Pr0xy-Pw"));
	free(out);
	sms_settings_free(&s);
	/* an unset secret shows as empty, not as *** */
	s = sms_settings_defaults();
	out = sms_settings_format(s, SMS_PRINT_TEXT);
	assert_non_null(strstr(out, "http.password        = \n"));
	free(out);
	sms_settings_free(&s);
}

static void test_invalid_stored_value(void **state)
{
	struct stest_fx *f = *state;
	struct sg_error err;
	struct sms_run_stats st;

	/* written behind our back (or by a buggy older version) */
	assert_int_equal(store_setting_set(f->db, "sms.http.timeout", "forever", &err), 0);
	assert_null(sms_settings_load(f->db, &err));
	assert_int_equal(err.code, SG_E_CONFIG);
	assert_non_null(strstr(err.msg, "sms.http.timeout"));
	assert_int_equal(sms_run_due(f->db, NULL, sg_now(), 0, &st, &err), -1);
	/* unknown keys (a newer version) are ignored */
	assert_int_equal(store_setting_delete(f->db, "sms.http.timeout", &err), 0);
	assert_int_equal(store_setting_set(f->db, "sms.http.future", "x", &err), 0);
	{
		struct sms_settings *s = load(f->db);

		sms_settings_free(&s);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_defaults, stest_setup, stest_teardown),
		cmocka_unit_test_setup_teardown(test_set_normalises, stest_setup, stest_teardown),
		cmocka_unit_test_setup_teardown(test_refusals_all_or_nothing, stest_setup,
			stest_teardown),
		cmocka_unit_test_setup_teardown(test_clickatell_preset, stest_setup, stest_teardown),
		cmocka_unit_test_setup_teardown(test_format_hides_secrets, stest_setup,
			stest_teardown),
		cmocka_unit_test_setup_teardown(test_invalid_stored_value, stest_setup,
			stest_teardown),
	};

	sg_log_init("test_sms_settings", SG_LOGDEST_STDERR, SG_LOG_ERR);
	return cmocka_run_group_tests(tests, stest_group_setup, stest_group_teardown);
}
