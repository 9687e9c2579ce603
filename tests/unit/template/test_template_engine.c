/*
 * test_template_engine.c - F-TPL-1: the template language (template_engine.c):
 * substitution, lists, records, conditions, standalone directive lines,
 * comments, escaping per context (header/text/HTML), UTF-8 repair, syntax
 * errors with line and column, variable checks, the output cap.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "template/template_int.h"

static const char *const rec_fields[] = {"a", "b", NULL};
static const struct template_var_def tvars[] = {
	{"name", TEMPLATE_VAR_TEXT, NULL, "N", "a text"},
	{"other", TEMPLATE_VAR_TEXT, NULL, "O", "a text"},
	{"items", TEMPLATE_VAR_LIST, NULL, "i", "a list"},
	{"recs", TEMPLATE_VAR_RECORDS, rec_fields, "r", "records"},
};
static const struct template_def tdef = {"test", "Test", TEMPLATE_KIND_MAIL, 0, tvars,
	sizeof(tvars) / sizeof(tvars[0]), "", NULL};

#define VMAX 8
struct case_ok {
	const char *name;
	const char *src;
	enum tpl_ctx ctx;
	struct template_var vars[VMAX];
	const char *want;
};

static const struct case_ok ok_cases[] = {
	{"plain text", "hello\n", TPL_CTX_TEXT, {{NULL, NULL}}, "hello\n"},
	{"variable", "Hi ${name}!", TPL_CTX_TEXT, {{"name", "Bob"}}, "Hi Bob!"},
	{"blanks inside ${ }", "${ name }", TPL_CTX_TEXT, {{"name", "x"}}, "x"},
	{"unset variable is empty", "[${name}]", TPL_CTX_TEXT, {{NULL, NULL}}, "[]"},
	{"text variable keeps first value", "${name}", TPL_CTX_TEXT,
		{{"name", "a"}, {"name", "b"}}, "a"},
	{"list joined", "${items}", TPL_CTX_TEXT, {{"items", "x"}, {"items", "y"}}, "x, y"},
	{"list loop", "<#list items as i>[${i}]</#list>", TPL_CTX_TEXT,
		{{"items", "x"}, {"items", "y"}}, "[x][y]"},
	{"empty list loop", "a<#list items as i>[${i}]</#list>b", TPL_CTX_TEXT, {{NULL, NULL}},
		"ab"},
	{"records, missing field empty", "<#list recs as r>${r.a}=${r.b};</#list>", TPL_CTX_TEXT,
		{{"recs.a", "1"}, {"recs.b", "2"}, {"recs.a", "3"}}, "1=2;3=;"},
	{"nested loops see outer item", "<#list items as i><#list recs as r>${i}${r.a} </#list></#list>",
		TPL_CTX_TEXT, {{"items", "x"}, {"items", "y"}, {"recs.a", "1"}, {"recs.a", "2"}},
		"x1 x2 y1 y2 "},
	{"if true", "<#if name>yes</#if>", TPL_CTX_TEXT, {{"name", "v"}}, "yes"},
	{"if empty is false", "<#if name>yes<#else>no</#if>", TPL_CTX_TEXT, {{"name", ""}}, "no"},
	{"if negated", "<#if !name>none</#if>", TPL_CTX_TEXT, {{NULL, NULL}}, "none"},
	{"if list", "<#if items>some</#if><#if recs>recs</#if>", TPL_CTX_TEXT,
		{{"items", "x"}}, "some"},
	{"if record field", "<#list recs as r><#if r.b>${r.b}<#else>-</#if></#list>",
		TPL_CTX_TEXT, {{"recs.a", "1"}, {"recs.b", ""}, {"recs.a", "2"}, {"recs.b", "B"}},
		"-B"},
	{"standalone directive lines vanish", "a\n  <#if name>\nyes\n  </#if>\nb\n", TPL_CTX_TEXT,
		{{"name", "v"}}, "a\nyes\nb\n"},
	{"standalone false branch", "a\n<#if name>\nyes\n<#else>\nno\n</#if>\nb\n", TPL_CTX_TEXT,
		{{NULL, NULL}}, "a\nno\nb\n"},
	{"standalone list lines", "R:\n<#list items as i>\n - ${i}\n</#list>\nend", TPL_CTX_TEXT,
		{{"items", "x"}, {"items", "y"}}, "R:\n - x\n - y\nend"},
	{"inline directive keeps line", "a <#if name>b</#if>\nc", TPL_CTX_TEXT, {{"name", "1"}},
		"a b\nc"},
	{"comment", "x<#-- note ${x} -->y", TPL_CTX_TEXT, {{NULL, NULL}}, "xy"},
	{"standalone comment line", "a\n<#-- note -->\nb", TPL_CTX_TEXT, {{NULL, NULL}}, "a\nb"},
	{"literal ${", "cost: $${name} $$", TPL_CTX_TEXT, {{"name", "x"}}, "cost: ${name} $$"},
	{"header: CR LF TAB become spaces", "S: ${name}", TPL_CTX_HEADER,
		{{"name", "a\r\nBcc: evil@x\tz"}}, "S: a  Bcc: evil@x z"},
	{"text: CR and controls dropped, LF kept", "${name}", TPL_CTX_TEXT,
		{{"name", "a\r\nb\x01\x7f" "c\td"}}, "a\nbc\td"},
	{"html escaped", "<p>${name}</p>", TPL_CTX_HTML, {{"name", "<b>&\"'"}},
		"<p>&lt;b&gt;&amp;&quot;&#39;</p>"},
	{"html literal text untouched", "<b>x</b>", TPL_CTX_HTML, {{NULL, NULL}}, "<b>x</b>"},
	{"sms keeps newlines", "${name}", TPL_CTX_SMS, {{"name", "a\nb"}}, "a\nb"},
	{"invalid UTF-8 repaired", "${name}", TPL_CTX_TEXT, {{"name", "a\xff" "b"}},
		"a\xef\xbf\xbd" "b"},
	{"UTF-8 kept", "${name}", TPL_CTX_HEADER, {{"name", "Grüße 日本"}}, "Grüße 日本"},
	{"NULL value is empty", "[${name}]", TPL_CTX_TEXT, {{"name", NULL}}, "[]"},
};

static size_t nvars(const struct template_var *v)
{
	size_t n = 0;

	while (n < VMAX && v[n].name != NULL)
		n++;
	return n;
}

static void test_render_table(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ok_cases) / sizeof(ok_cases[0]); i++) {
		const struct case_ok *c = &ok_cases[i];
		struct sg_error err;
		struct tpl_vars *v;
		struct tpl *t;
		struct sg_buf b;

		t = tpl_parse(&tdef, c->src, strlen(c->src), 1, 1, &err);
		if (t == NULL)
			fail_msg("%s: parse: %s", c->name, err.msg);
		v = tpl_vars_new(&tdef, c->vars, nvars(c->vars), &err);
		if (v == NULL)
			fail_msg("%s: vars: %s", c->name, err.msg);
		sg_buf_init(&b, 1 << 16);
		if (tpl_render(t, v, c->ctx, &b, &err) < 0)
			fail_msg("%s: render: %s", c->name, err.msg);
		if (strcmp(b.data != NULL ? b.data : "", c->want) != 0)
			fail_msg("%s: got '%s' want '%s'", c->name, b.data != NULL ? b.data : "",
				c->want);
		sg_buf_deinit(&b);
		tpl_vars_free(&v);
		tpl_free(&t);
	}
}

struct case_err {
	const char *src;
	const char *want;  /* substring of the error message */
};

static const struct case_err err_cases[] = {
	{"${nope}", "line 1, column 1: unknown variable 'nope'"},
	{"a\nb ${name", "line 2, column 3: '${' without a closing '}'"},
	{"ü ${nope}", "line 1, column 3: unknown variable"},
	{"${}", "expected a variable name"},
	{"<#if name>x", "line 1, column 1: <#if> without </#if>"},
	{"<#list items as i>x", "<#list> without </#list>"},
	{"x\n</#if>", "</#if> without an opening tag"},
	{"<#else>", "<#else> without an opening tag"},
	{"<#if name>a</#list>", "<#if> closed by the wrong tag"},
	{"<#foo>", "unknown directive <#foo>"},
	{"</#foo>", "unknown directive </#foo>"},
	{"<#if name", "expected '>'"},
	{"${recs}", "'recs' is a list of records"},
	{"<#list name as x></#list>", "'name' is not a list"},
	{"<#list recs as r>${r}</#list>", "'r' is a record"},
	{"<#list recs as r>${r.zz}</#list>", "unknown field 'zz' of 'r'"},
	{"<#list items as i>${i.a}</#list>", "'i' has no fields"},
	{"${name.x}", "'name' has no fields"},
	{"<#list items as name></#list>", "hides the variable"},
	{"<#list items as i><#list i as j></#list></#list>", "'i' is an item, not a list"},
	{"<#list items i>", "expected 'as'"},
	{"<#-- open", "'<#--' without '-->'"},
	{"${i}<#list items as i></#list>", "unknown variable 'i'"},
};

static void test_syntax_errors(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++) {
		struct sg_error err;
		struct tpl *t = tpl_parse(&tdef, err_cases[i].src, strlen(err_cases[i].src), 1, 1,
			&err);

		if (t != NULL)
			fail_msg("'%s': accepted", err_cases[i].src);
		assert_int_equal(err.code, SG_E_PARSE);
		if (strstr(err.msg, err_cases[i].want) == NULL)
			fail_msg("'%s': got '%s' want '%s'", err_cases[i].src, err.msg,
				err_cases[i].want);
	}
}

/* Positions are relative to line0/col0 (a field inside a file). */
static void test_error_offset(void **state)
{
	struct sg_error err;

	(void)state;
	assert_null(tpl_parse(&tdef, "ab ${x}", 7, 12, 10, &err));
	assert_non_null(strstr(err.msg, "line 12, column 13:"));
}

static void test_depth_limit(void **state)
{
	struct sg_buf b;
	struct sg_error err;
	struct tpl *t;
	int i;

	(void)state;
	sg_buf_init(&b, 1 << 16);
	for (i = 0; i < TEMPLATE_DEPTH_MAX; i++)
		sg_buf_append_str(&b, "<#if name>", NULL);
	for (i = 0; i < TEMPLATE_DEPTH_MAX; i++)
		sg_buf_append_str(&b, "</#if>", NULL);
	t = tpl_parse(&tdef, b.data, b.len, 1, 1, &err);
	assert_non_null(t);  /* exactly the limit is fine */
	tpl_free(&t);
	sg_buf_reset(&b);
	for (i = 0; i <= TEMPLATE_DEPTH_MAX; i++)
		sg_buf_append_str(&b, "<#if name>", NULL);
	for (i = 0; i <= TEMPLATE_DEPTH_MAX; i++)
		sg_buf_append_str(&b, "</#if>", NULL);
	assert_null(tpl_parse(&tdef, b.data, b.len, 1, 1, &err));
	assert_non_null(strstr(err.msg, "nested deeper than"));
	sg_buf_deinit(&b);
}

static void test_vars_refused(void **state)
{
	static const struct {
		const char *name;
	} bad[] = {{"nope"}, {"recs"}, {"recs.zz"}, {"name.a"}, {""},
		{"averyveryveryveryveryveryveryveryveryveryveryveryveryveryverylongname.a"}};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct template_var v = {bad[i].name, "x"};
		struct sg_error err;

		if (tpl_vars_new(&tdef, &v, 1, &err) != NULL)
			fail_msg("variable '%s' accepted", bad[i].name);
		assert_int_equal(err.code, SG_E_INVAL);
		assert_non_null(strstr(err.msg, "has no variable"));
	}
}

/* The output buffer's cap stops a rendering that grows too much. */
static void test_output_cap(void **state)
{
	char *big = malloc(600 * 1024 + 1);
	struct template_var v[2] = {{"items", big}, {"items", big}};
	struct sg_error err;
	struct tpl_vars *tv;
	struct tpl *t;
	struct sg_buf b;

	(void)state;
	memset(big, 'x', 600 * 1024);
	big[600 * 1024] = '\0';
	t = tpl_parse(&tdef, "${items}", 8, 1, 1, &err);
	assert_non_null(t);
	tv = tpl_vars_new(&tdef, v, 2, &err);
	assert_non_null(tv);
	sg_buf_init(&b, TEMPLATE_OUTPUT_MAX);
	assert_int_equal(tpl_render(t, tv, TPL_CTX_TEXT, &b, &err), -1);
	assert_int_equal(err.code, SG_E_LIMIT);
	sg_buf_deinit(&b);
	tpl_vars_free(&tv);
	tpl_free(&t);
	free(big);
}

static void test_has_syntax(void **state)
{
	(void)state;
	assert_true(tpl_has_syntax("a ${b}", 6));
	assert_true(tpl_has_syntax("<#if", 4));
	assert_true(tpl_has_syntax("</#if>", 6));
	assert_false(tpl_has_syntax("a $ { < # b", 11));
	assert_int_equal(tpl_utf8_chars("aü日"), 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render_table),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_error_offset),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_vars_refused),
		cmocka_unit_test(test_output_cap),
		cmocka_unit_test(test_has_syntax),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
