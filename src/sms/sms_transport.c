/*
 * sms_transport.c - SMS transports behind one interface (SPEC F-SMS-2, guide
 * §15): the generic HTTP(S) transport over libcurl (URL, GET/POST, parameter
 * template with placeholders, basic authentication, proxy, timeout, success
 * by status codes and a body regex; the Clickatell preset is this transport
 * with other defaults), the file transport for tests, and custom transports.
 *
 * Callers: sms_run_due (sms_queue.c), the CLI. A transport is used by one
 * thread at a time; each send makes its own curl handle (nothing shared).
 * curl_global_init is left to the program's main (STYLE §7); libcurl >= 7.84
 * also initialises itself thread-safely on first use.
 *
 * Secrets: the parameter values (password, text) are never logged and never
 * put into error messages; error messages carry the HTTP status, curl's
 * error text (no URL) and at most 120 escaped bytes of the response body.
 */
#include "sms_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "policy/policy.h"

#define SMS_BODY_MAX (64 * 1024)      /* response bytes kept */
#define SMS_REQUEST_MAX (64 * 1024)   /* expanded parameters */

struct sms_transport {
	char name[32];
	sms_send_fn *fn;
	void *arg;
	void (*free_arg)(void *arg);
};

struct sms_transport *sms_transport_new_custom(const char *name, sms_send_fn *fn,
	void *arg)
{
	struct sms_transport *t = sg_xcalloc(1, sizeof(*t));

	sg_strlcpy(t->name, name != NULL ? name : "custom", sizeof(t->name));
	t->fn = fn;
	t->arg = arg;
	return t;
}

int sms_transport_send(struct sms_transport *t, const struct sms_message *m,
	struct sg_error *err)
{
	return t->fn(t->arg, m, err);
}

const char *sms_transport_name(const struct sms_transport *t)
{
	return t->name;
}

void sms_transport_close(struct sms_transport **tp)
{
	struct sms_transport *t = tp != NULL ? *tp : NULL;

	if (t == NULL)
		return;
	if (t->free_arg != NULL)
		t->free_arg(t->arg);
	free(t);
	*tp = NULL;
}

/* ------------------------------------------------------- parameter template */

/* var_value - the value of placeholder name[0..len), or NULL if unknown */
static const char *var_value(const struct sms_vars *v, const char *name, size_t len)
{
	static const struct {
		const char *name;
		size_t off;
	} vars[] = {
		{"number", offsetof(struct sms_vars, number)},
		{"number_digits", offsetof(struct sms_vars, number_digits)},
		{"text", offsetof(struct sms_vars, text)},
		{"username", offsetof(struct sms_vars, username)},
		{"password", offsetof(struct sms_vars, password)},
		{"api_id", offsetof(struct sms_vars, api_id)},
		{"from", offsetof(struct sms_vars, from)},
		{"id", offsetof(struct sms_vars, id)},
	};
	size_t i;

	for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		if (strlen(vars[i].name) == len && memcmp(vars[i].name, name, len) == 0)
			return *(const char *const *)((const char *)v + vars[i].off);
	}
	return NULL;
}

/* subst - expand the placeholders of s[0..len) into raw; sets *is_lone_empty
 * when s is exactly one placeholder whose value is "" */
static int subst(const char *s, size_t len, const struct sms_vars *v, struct sg_buf *raw,
	bool *is_lone_empty, struct sg_error *err)
{
	size_t i = 0;

	*is_lone_empty = false;
	while (i < len) {
		const char *end, *val;

		if (s[i] != '$' || i + 1 >= len || s[i + 1] != '{') {
			if (sg_buf_append(raw, s + i, 1, err) < 0)
				return -1;
			i++;
			continue;
		}
		end = memchr(s + i + 2, '}', len - i - 2);
		if (end == NULL) {
			sg_error_set(err, SG_E_INVAL, "unterminated '${' in parameters");
			return -1;
		}
		val = var_value(v, s + i + 2, (size_t)(end - s - i - 2));
		if (val == NULL) {
			sg_error_set(err, SG_E_INVAL, "unknown placeholder '${%.*s}' (known: "
				"number number_digits text username password api_id from id)",
				(int)(end - s - i - 2 > 32 ? 32 : end - s - i - 2), s + i + 2);
			return -1;
		}
		if (i == 0 && (size_t)(end - s) == len - 1 && *val == '\0')
			*is_lone_empty = true;
		if (sg_buf_append_str(raw, val, err) < 0)
			return -1;
		i = (size_t)(end - s) + 1;
	}
	return 0;
}

/* append_escaped - URL-encode raw into out */
static int append_escaped(struct sg_buf *out, const struct sg_buf *raw,
	struct sg_error *err)
{
	char *e;
	int rc;

	if (raw->len == 0)
		return 0;
	e = curl_easy_escape(NULL, raw->data, (int)raw->len);
	if (e == NULL) {
		sg_error_set(err, SG_E_NOMEM, "cannot URL-encode a parameter");
		return -1;
	}
	rc = sg_buf_append_str(out, e, err);
	explicit_bzero(e, strlen(e));
	curl_free(e);
	return rc;
}

int sms_params_expand(const char *tmpl, const struct sms_vars *v, struct sg_buf *out,
	struct sg_error *err)
{
	const char *p = tmpl;
	unsigned n = 0;
	struct sg_buf name, val;
	int rc = -1;

	sg_buf_init(&name, SMS_REQUEST_MAX);
	sg_buf_init(&val, SMS_REQUEST_MAX);
	while (*p != '\0') {
		size_t len = strcspn(p, "&"), nlen;
		const char *eq = memchr(p, '=', len);
		bool is_empty_name, is_empty_val;

		if (len == 0) {  /* "a=1&&b=2": tolerate empty pieces */
			p++;
			continue;
		}
		if (eq == NULL || eq == p) {
			sg_error_set(err, SG_E_INVAL, "parameter '%.*s' is not NAME=VALUE",
				(int)(len > 40 ? 40 : len), p);
			goto out;
		}
		if (++n > SMS_PARAMS_MAX) {
			sg_error_set(err, SG_E_INVAL, "more than %d parameters", SMS_PARAMS_MAX);
			goto out;
		}
		nlen = (size_t)(eq - p);
		sg_buf_reset(&name);
		sg_buf_reset(&val);
		if (subst(p, nlen, v, &name, &is_empty_name, err) < 0 ||
			subst(eq + 1, len - nlen - 1, v, &val, &is_empty_val, err) < 0)
			goto out;
		if (name.len == 0) {
			sg_error_set(err, SG_E_INVAL, "a parameter name expands to nothing");
			goto out;
		}
		if (!is_empty_val) {
			if ((out->len > 0 && sg_buf_append_str(out, "&", err) < 0) ||
				append_escaped(out, &name, err) < 0 ||
				sg_buf_append_str(out, "=", err) < 0 ||
				append_escaped(out, &val, err) < 0)
				goto out;
		}
		p += len;
		if (*p == '&')
			p++;
	}
	if (out->data == NULL && sg_buf_append_str(out, "", err) < 0)
		goto out;
	rc = 0;
out:
	if (val.data != NULL)
		explicit_bzero(val.data, val.len);
	sg_buf_deinit(&name);
	sg_buf_deinit(&val);
	return rc;
}

/* ------------------------------------------------------------ file transport */

struct sms_file {
	char *path;
};

/* file_escape - text on one line: \\ \n \r \t escaped, other controls \xHH */
static void file_escape(struct sg_buf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '\\')
			sg_buf_append_str(b, "\\\\", NULL);
		else if (c == '\n')
			sg_buf_append_str(b, "\\n", NULL);
		else if (c == '\r')
			sg_buf_append_str(b, "\\r", NULL);
		else if (c == '\t')
			sg_buf_append_str(b, "\\t", NULL);
		else if (c < 0x20 || c == 0x7f)
			sg_buf_printf(b, NULL, "\\x%02x", c);
		else
			sg_buf_append(b, s, 1, NULL);
	}
}

/* file_send - append "TIME\tID\tPHONE\tTEXT\n" and fsync */
static int file_send(void *arg, const struct sms_message *m, struct sg_error *err)
{
	struct sms_file *f = arg;
	struct sg_buf b;
	char ts[32];
	int fd, rc = -1;

	sg_buf_init(&b, 4 * SMS_TEXT_MAX + 256);
	sg_buf_printf(&b, NULL, "%s\t%lld\t%s\t", sg_time_iso8601(sg_now(), ts, sizeof(ts)),
		(long long)m->id, m->phone);
	file_escape(&b, m->text);
	sg_buf_append_str(&b, "\n", NULL);
	fd = open(f->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "file transport: open %s", f->path);
		goto out;
	}
	if (sg_write_all(fd, b.data, b.len) < 0 || fsync(fd) < 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "file transport: write %s", f->path);
		close(fd);
		goto out;
	}
	if (close(fd) < 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "file transport: close %s", f->path);
		goto out;
	}
	rc = 0;
out:
	explicit_bzero(b.data, b.len);
	sg_buf_deinit(&b);
	return rc;
}

static void file_free(void *arg)
{
	struct sms_file *f = arg;

	free(f->path);
	free(f);
}

/* ------------------------------------------------------------ HTTP transport */

struct sms_http {
	struct sms_settings *s;      /* private copy of what it needs */
	struct policy_regex *success;  /* NULL: any body */
};

/* http_sink - keep the first SMS_BODY_MAX bytes of the response */
static size_t http_sink(char *p, size_t size, size_t n, void *arg)
{
	struct sg_buf *b = arg;
	size_t len = size * n, room = b->max - 1 - b->len;

	if (b->len + 1 < b->max)
		sg_buf_append(b, p, len < room ? len : room, NULL);
	return len;
}

/* http_is_success_code - code is in one of the configured ranges */
static bool http_is_success_code(const struct sms_settings *s, long code)
{
	size_t i;

	for (i = 0; i < s->n_codes; i++) {
		if (code >= (long)s->codes[i].lo && code <= (long)s->codes[i].hi)
			return true;
	}
	return false;
}

/* http_classify - outcome of a completed exchange */
static int http_classify(struct sms_http *h, long code, const struct sg_buf *body,
	struct sg_error *err)
{
	char snip[128];
	size_t n = body->len < 120 ? body->len : 120;

	sg_log_esc(snip, sizeof(snip), body->data != NULL ? body->data : "", n);
	if (http_is_success_code(h->s, code)) {
		int rc = 1;

		if (h->success != NULL)
			rc = policy_regex_find(h->success, body->data ? body->data : "",
				body->len, 0, NULL, NULL, err);
		if (rc == 1)
			return 0;
		if (rc == 0)
			sg_error_set(err, SG_E_PEER_TEMP, "HTTP %ld, response does not match "
				"sms.http.success_body: %s", code, snip);
		return -1;
	}
	/* 408 Request Timeout, 429 Too Many Requests and 5xx: try again later */
	if (code == 408 || code == 429 || code >= 500)
		sg_error_set(err, SG_E_PEER_TEMP, "HTTP %ld: %s", code, snip);
	else
		sg_error_set(err, SG_E_PEER_PERM, "HTTP %ld: %s", code, snip);
	return -1;
}

/* http_setup - options of one request (everything but URL and body) */
static void http_setup(CURL *c, const struct sms_settings *s, char *ebuf,
	struct sg_buf *body)
{
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)s->timeout);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_sink);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "sealgate-sms/1");
	/* "" disables the *_proxy environment variables: only the setting counts */
	curl_easy_setopt(c, CURLOPT_PROXY, s->proxy);
	if (s->proxy[0] != '\0' && s->proxy_username[0] != '\0') {
		curl_easy_setopt(c, CURLOPT_PROXYUSERNAME, s->proxy_username);
		curl_easy_setopt(c, CURLOPT_PROXYPASSWORD, s->proxy_password);
		curl_easy_setopt(c, CURLOPT_PROXYAUTH, CURLAUTH_ANY);
	}
	if (s->is_basic_auth) {
		curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
		curl_easy_setopt(c, CURLOPT_USERNAME, s->username);
		curl_easy_setopt(c, CURLOPT_PASSWORD, s->password);
	}
	if (s->ca_file[0] != '\0')
		curl_easy_setopt(c, CURLOPT_CAINFO, s->ca_file);
	if (!s->is_tls_verify) {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	}
}

/* http_send - one request; see sms_send_fn */
static int http_send(void *arg, const struct sms_message *m, struct sg_error *err)
{
	struct sms_http *h = arg;
	const struct sms_settings *s = h->s;
	char idbuf[24], ebuf[CURL_ERROR_SIZE] = "";
	struct sms_vars v = {m->phone, m->phone[0] == '+' ? m->phone + 1 : m->phone, m->text,
		s->username, s->password, s->api_id, s->from, idbuf};
	struct sg_buf params, url, body;
	CURL *c = NULL;
	CURLcode cc;
	long code = 0;
	int rc = -1;

	snprintf(idbuf, sizeof(idbuf), "%lld", (long long)m->id);
	sg_buf_init(&params, SMS_REQUEST_MAX);
	sg_buf_init(&url, SMS_REQUEST_MAX + 4096);
	sg_buf_init(&body, SMS_BODY_MAX);
	if (sms_params_expand(s->params, &v, &params, err) < 0) {
		/* the template was validated when stored: a value is too long */
		sg_error_prefix(err, "http transport: ");
		goto out;
	}
	sg_buf_append_str(&url, s->url, NULL);
	if (!s->is_post && params.len > 0 && (sg_buf_append_str(&url,
		strchr(s->url, '?') != NULL ? "&" : "?", err) < 0 ||
		sg_buf_append_str(&url, params.data, err) < 0))
		goto out;
	c = curl_easy_init();
	if (c == NULL) {
		sg_error_set(err, SG_E_NOMEM, "http transport: cannot initialise curl");
		goto out;
	}
	http_setup(c, s, ebuf, &body);
	curl_easy_setopt(c, CURLOPT_URL, url.data);
	if (s->is_post) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)params.len);
		curl_easy_setopt(c, CURLOPT_COPYPOSTFIELDS, params.data);
	}
	cc = curl_easy_perform(c);
	if (cc != CURLE_OK) {
		sg_error_set(err, SG_E_PEER_TEMP, "http transport: %s",
			ebuf[0] != '\0' ? ebuf : curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	rc = http_classify(h, code, &body, err);
out:
	if (c != NULL)
		curl_easy_cleanup(c);
	if (params.data != NULL)
		explicit_bzero(params.data, params.len);
	if (url.data != NULL)
		explicit_bzero(url.data, url.len);
	sg_buf_deinit(&params);
	sg_buf_deinit(&url);
	sg_buf_deinit(&body);
	return rc;
}

static void http_free(void *arg)
{
	struct sms_http *h = arg;

	policy_regex_free(&h->success);
	sms_settings_free(&h->s);
	free(h);
}

/* settings_copy - a private copy of s (strings duplicated) */
static struct sms_settings *settings_copy(const struct sms_settings *s)
{
	struct sms_settings *c = sg_xmalloc(sizeof(*c));

	*c = *s;
	c->url = sg_xstrdup(s->url);
	c->params = sg_xstrdup(s->params);
	c->username = sg_xstrdup(s->username);
	c->password = sg_xstrdup(s->password);
	c->api_id = sg_xstrdup(s->api_id);
	c->from = sg_xstrdup(s->from);
	c->proxy = sg_xstrdup(s->proxy);
	c->proxy_username = sg_xstrdup(s->proxy_username);
	c->proxy_password = sg_xstrdup(s->proxy_password);
	c->success_body = sg_xstrdup(s->success_body);
	c->ca_file = sg_xstrdup(s->ca_file);
	c->file_path = sg_xstrdup(s->file_path);
	return c;
}

struct sms_transport *sms_transport_open(const struct sms_settings *s,
	struct sg_error *err)
{
	struct sms_transport *t;

	switch (s->transport) {
	case SMS_TRANSPORT_NONE:
		sg_error_set(err, SG_E_CONFIG, "no SMS transport configured "
			"(sms.transport = none)");
		return NULL;
	case SMS_TRANSPORT_FILE: {
		struct sms_file *f;

		if (s->file_path[0] != '/') {
			sg_error_set(err, SG_E_CONFIG, "file transport: sms.file.path is not set");
			return NULL;
		}
		f = sg_xcalloc(1, sizeof(*f));
		f->path = sg_xstrdup(s->file_path);
		t = sms_transport_new_custom("file", file_send, f);
		t->free_arg = file_free;
		return t;
	}
	case SMS_TRANSPORT_HTTP:
	case SMS_TRANSPORT_CLICKATELL: {
		struct sms_http *h;
		struct policy_regex *re = NULL;

		if (s->url[0] == '\0') {
			sg_error_set(err, SG_E_CONFIG, "http transport: sms.http.url is not set");
			return NULL;
		}
		if (s->success_body[0] != '\0') {
			re = policy_regex_new(s->success_body, 0, err);
			if (re == NULL) {
				sg_error_prefix(err, "sms.http.success_body: ");
				return NULL;
			}
		}
		h = sg_xcalloc(1, sizeof(*h));
		h->s = settings_copy(s);
		h->success = re;
		t = sms_transport_new_custom(s->transport == SMS_TRANSPORT_HTTP ? "http" :
			"clickatell", http_send, h);
		t->free_arg = http_free;
		return t;
	}
	}
	sg_error_set(err, SG_E_INTERNAL, "unknown SMS transport %d", (int)s->transport);
	return NULL;
}
