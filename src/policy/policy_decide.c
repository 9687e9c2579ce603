/*
 * policy_decide.c - the per-message, per-recipient decision (F-POL-3..9):
 * the originator (From -> Sender -> envelope sender), the triggers (subject,
 * force-encrypt / force-sign headers, DLP), each envelope recipient's
 * locality, encrypt mode (F-POL-6), method (S/MIME, then PDF), signing,
 * strict decryption and notifications, and the grouping key.
 *
 * Called by the MPA for every message and by `sealgate policy explain`; one
 * struct policy per thread.
 *
 * Combination of sender and recipient values (SPEC §11): *_allowed flags must
 * be true on both sides; restrictions (only sign when encrypt, PDF only if
 * mandatory, calendar skips) apply when either side sets them; size limits:
 * the smaller; algorithms and key transport come from the recipient;
 * notifications, signing triggers and PDF signing from the sender.
 *
 * Encrypt mode, in this order: any trigger (subject, honoured force-encrypt
 * header, DLP must-encrypt) or force on either side => required; else
 * no_encryption on one side => blocked if the other side is mandatory, else
 * no; else mandatory on either side => required; else if possible. Required
 * but impossible => nothing is sent to that recipient and the sender is
 * notified (fail closed). Internal recipients are decryption candidates and
 * are never encrypted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy_int.h"

static const char *const origin_names[] = {"from", "sender", "envelope", "none"};
static const char *const encrypt_names[] = {"no", "if_possible", "required", "blocked"};
static const char *const method_names[] = {"plain", "smime", "pdf", "decrypt", "none"};
static const char *const sign_names[] = {"no", "yes", "when_encrypted"};
static const char *const why_names[] = {"sender_force", "recipient_force",
	"subject_trigger", "header_trigger", "dlp", "sender_mandatory",
	"recipient_mandatory", "sender_no_encryption", "recipient_no_encryption",
	"internal", "calendar_skip", "too_big"};
static const char *const dflag_names[] = {"smime_allowed", "pdf_allowed",
	"pdf_only_if_mandatory", "has_cert", "can_pdf", "sign_output", "sign_forced",
	"decrypt_strict", "notify_failed", "notify_encrypted", "passwords_to_originator",
	"encrypt_headers", "add_additional_certs", "remove_signature", "add_security_info",
	"subject_filter", "pdf_reply", "add_user"};

const char *policy_origin_name(enum policy_origin o)
{
	return (unsigned)o < 4 ? origin_names[o] : "?";
}

const char *policy_encrypt_name(enum policy_encrypt e)
{
	return (unsigned)e < 4 ? encrypt_names[e] : "?";
}

const char *policy_method_name(enum policy_method m)
{
	return (unsigned)m < 5 ? method_names[m] : "?";
}

const char *policy_sign_name(enum policy_sign s)
{
	return (unsigned)s < 3 ? sign_names[s] : "?";
}

const char *policy_bit_name(enum policy_bits_kind kind, unsigned bit)
{
	unsigned i = 0;

	if (bit == 0 || (bit & (bit - 1)) != 0)
		return "?";
	while ((1u << i) != bit)
		i++;
	if (kind == POLICY_BITS_WHY)
		return i < sizeof(why_names) / sizeof(why_names[0]) ? why_names[i] : "?";
	return i < sizeof(dflag_names) / sizeof(dflag_names[0]) ? dflag_names[i] : "?";
}

enum mode { M_NO, M_ALLOW, M_MANDATORY, M_FORCE };

static enum mode mode_of(const struct policy_props *pp)
{
	const char *v = policy_props_get(pp, POLICY_P_ENCRYPT_MODE, NULL);

	if (v == NULL)
		return M_ALLOW;
	if (strcmp(v, "no_encryption") == 0)
		return M_NO;
	if (strcmp(v, "mandatory") == 0)
		return M_MANDATORY;
	if (strcmp(v, "force") == 0)
		return M_FORCE;
	return M_ALLOW;
}

/* combine_modes - F-POL-6 for one external recipient */
static enum policy_encrypt combine_modes(enum mode s, enum mode r, unsigned trig,
	unsigned *why)
{
	*why |= trig;
	if (s == M_FORCE)
		*why |= POLICY_WHY_SENDER_FORCE;
	if (r == M_FORCE)
		*why |= POLICY_WHY_RECIPIENT_FORCE;
	if (s == M_MANDATORY)
		*why |= POLICY_WHY_SENDER_MANDATORY;
	if (r == M_MANDATORY)
		*why |= POLICY_WHY_RECIPIENT_MANDATORY;
	if (s == M_NO)
		*why |= POLICY_WHY_SENDER_NO_ENCRYPTION;
	if (r == M_NO)
		*why |= POLICY_WHY_RECIPIENT_NO_ENCRYPTION;
	if (trig != 0 || s == M_FORCE || r == M_FORCE)
		return POLICY_ENC_REQUIRED;
	if (s == M_NO || r == M_NO)
		return s == M_MANDATORY || r == M_MANDATORY ? POLICY_ENC_BLOCKED : POLICY_ENC_NO;
	if (s == M_MANDATORY || r == M_MANDATORY)
		return POLICY_ENC_REQUIRED;
	return POLICY_ENC_IF_POSSIBLE;
}

static bool both(const struct policy_props *a, const struct policy_props *b,
	enum policy_prop_id id)
{
	return policy_props_is_true(a, id) && policy_props_is_true(b, id);
}

static bool either(const struct policy_props *a, const struct policy_props *b,
	enum policy_prop_id id)
{
	return policy_props_is_true(a, id) || policy_props_is_true(b, id);
}

static uint64_t min_size(const struct policy_props *a, const struct policy_props *b,
	enum policy_prop_id id)
{
	int64_t x = policy_props_int(a, id), y = policy_props_int(b, id);

	return (uint64_t)(x < y ? x : y);
}

/* --------------------------------------------------------------- triggers */

/* header_trigger - honour one HEADER[:REGEX] trigger; 1 fired, 0, -1 */
static int header_trigger(struct policy *p, struct policy_result *res,
	const struct policy_msg *msg, enum policy_prop_id spec_id, struct sg_error *err)
{
	const char *spec = policy_props_get(res->sender_props, spec_id, NULL);
	char name[POLICY_HEADER_NAME_MAX];
	char *rx = NULL;
	const struct policy_regex *re = NULL;
	size_t k;
	int rc = -1;

	if (spec == NULL || msg->header_fn == NULL)
		return 0;
	if (policy_header_trigger_split(spec, name, sizeof(name), &rx, err) < 0)
		goto out;
	if (rx != NULL) {
		re = policy_regex_cached(p, rx, 0, err);
		if (re == NULL)
			goto out;
	}
	/* the header is meant for the gateway: it never leaves, matched or not */
	if (msg->header_fn(msg->header_arg, name, 0) != NULL) {
		for (k = 0; k < 2 && res->remove_headers[k] != NULL; k++)
			;
		if (k < 2) {
			sg_strlcpy(res->remove_header_buf[k], name, sizeof(res->remove_header_buf[k]));
			res->remove_headers[k] = res->remove_header_buf[k];
		}
	}
	rc = policy_header_match(name, re, msg->header_fn, msg->header_arg, err);
out:
	if (rc < 0)
		sg_error_prefix(err, "%s: ", policy_prop_def(spec_id)->name);
	free(rx);
	return rc;
}

/* subject_trigger - F-POL-7 and the phone number after it (guide §4.5) */
static int subject_trigger(struct policy *p, struct policy_result *res,
	const struct policy_msg *msg, struct sg_error *err)
{
	const struct policy_props *sp = res->sender_props;
	const char *trig = policy_props_get(sp, POLICY_P_SUBJECT_TRIGGER, NULL);
	const struct policy_regex *re;
	unsigned flags = 0;
	size_t tail = 0;
	char *subj = NULL;
	int rc;

	if (!policy_props_is_true(sp, POLICY_P_SUBJECT_TRIGGER_ENABLED) || trig == NULL ||
		*trig == '\0' || msg->subject == NULL)
		return 0;
	if (policy_props_is_true(sp, POLICY_P_SUBJECT_TRIGGER_IS_REGEX))
		flags |= POLICY_SUBJ_REGEX;
	if (policy_props_is_true(sp, POLICY_P_SUBJECT_TRIGGER_REMOVE_MATCH))
		flags |= POLICY_SUBJ_REMOVE;
	re = policy_regex_cached(p, trig, (flags & POLICY_SUBJ_REGEX) ? 0 :
		POLICY_RE_LITERAL | POLICY_RE_CASELESS, err);
	if (re == NULL) {
		sg_error_prefix(err, "subject_trigger: ");
		return -1;
	}
	rc = policy_subject_trigger_re(re, msg->subject, flags, &subj, &tail, err);
	if (rc <= 0)
		return rc;
	res->is_subject_triggered = true;
	if (policy_props_is_true(sp, POLICY_P_SMS_PHONE_NUMBER_IN_SUBJECT_ALLOWED) &&
		policy_phone_from_tail(msg->subject + tail, policy_props_get(sp,
		POLICY_P_SMS_DEFAULT_COUNTRY_CODE, NULL), res->phone, sizeof(res->phone)) == 1 &&
		(flags & POLICY_SUBJ_REMOVE)) {
		/* the number goes with the trigger: remove both */
		char *head = sg_xstrndup(msg->subject, tail), *s2 = NULL;

		free(subj);
		subj = NULL;
		rc = policy_subject_trigger_re(re, head, flags, &s2, NULL, err);
		free(head);
		if (rc < 0)
			return -1;
		subj = s2;
	}
	res->subject_out = subj;
	return 1;
}

/* ---------------------------------------------------------------- decision */

/* ext_method - method for an external recipient; calls env only when the
 * answer matters */
static int ext_method(const struct policy_env *env, struct policy_decision *d,
	const struct policy_msg *msg, struct sg_error *err)
{
	int rc;

	if (d->encrypt == POLICY_ENC_NO) {
		d->method = POLICY_METHOD_PLAIN;
		return 0;
	}
	if (d->encrypt == POLICY_ENC_BLOCKED) {
		d->method = POLICY_METHOD_NONE;
		d->flags |= POLICY_D_NOTIFY_FAILED;
		return 0;
	}
	if ((d->flags & POLICY_D_SMIME_ALLOWED) && env != NULL &&
		env->has_encryption_cert != NULL) {
		rc = env->has_encryption_cert(env->arg, d->recipient, d->props, err);
		if (rc < 0)
			return -1;
		if (rc == 1)
			d->flags |= POLICY_D_HAS_CERT;
	}
	if ((d->flags & POLICY_D_PDF_ALLOWED) && (!(d->flags & POLICY_D_PDF_ONLY_IF_MANDATORY) ||
		d->encrypt == POLICY_ENC_REQUIRED) && env != NULL && env->can_pdf != NULL) {
		rc = env->can_pdf(env->arg, d->recipient, d->props, err);
		if (rc < 0)
			return -1;
		if (rc == 1)
			d->flags |= POLICY_D_CAN_PDF;
	}
	(void)msg;
	if (d->flags & POLICY_D_HAS_CERT)
		d->method = POLICY_METHOD_SMIME;
	else if (d->flags & POLICY_D_CAN_PDF)
		d->method = POLICY_METHOD_PDF;
	else if (d->encrypt == POLICY_ENC_REQUIRED)
		d->method = POLICY_METHOD_NONE;
	else
		d->method = POLICY_METHOD_PLAIN;
	if (d->method == POLICY_METHOD_NONE)
		d->flags |= POLICY_D_NOTIFY_FAILED;
	return 0;
}

/* decide_external - encrypt mode, method, signing for an external recipient */
static int decide_external(struct policy_result *res, const struct policy_msg *msg,
	const struct policy_env *env, struct policy_decision *d, struct sg_error *err)
{
	const struct policy_props *sp = res->sender_props, *rp = d->props;
	unsigned trig = 0;
	bool is_cal, sign_ok;

	if (res->is_subject_triggered)
		trig |= POLICY_WHY_SUBJECT_TRIGGER;
	if (res->is_header_encrypt_triggered)
		trig |= POLICY_WHY_HEADER_TRIGGER;
	if (msg->flags & POLICY_MSG_DLP_MUST_ENCRYPT)
		trig |= POLICY_WHY_DLP;
	d->encrypt = combine_modes(mode_of(sp), mode_of(rp), trig, &d->why);
	/* D-3: calendar skips never apply when encryption is required */
	is_cal = (msg->flags & POLICY_MSG_CALENDAR) && d->encrypt != POLICY_ENC_REQUIRED;
	if (is_cal && d->encrypt == POLICY_ENC_IF_POSSIBLE &&
		either(sp, rp, POLICY_P_SMIME_SKIP_CALENDAR)) {
		d->encrypt = POLICY_ENC_NO;
		d->why |= POLICY_WHY_CALENDAR_SKIP;
	}
	if (both(sp, rp, POLICY_P_SMIME_ALLOWED)) {
		if (msg->size <= d->smime_max_size)
			d->flags |= POLICY_D_SMIME_ALLOWED;
		else
			d->why |= POLICY_WHY_TOO_BIG;
	}
	if (both(sp, rp, POLICY_P_PDF_ENCRYPTION_ALLOWED)) {
		if (msg->size <= d->pdf_max_size)
			d->flags |= POLICY_D_PDF_ALLOWED;
		else
			d->why |= POLICY_WHY_TOO_BIG;
	}
	if (either(sp, rp, POLICY_P_PDF_ONLY_IF_MANDATORY))
		d->flags |= POLICY_D_PDF_ONLY_IF_MANDATORY;
	if (ext_method(env, d, msg, err) < 0)
		return -1;
	/* signing (the originator's signing certificate is src/pki's concern:
	 * SIGN_OUTPUT means "sign when the originator has a usable one") */
	sign_ok = both(sp, rp, POLICY_P_SMIME_ALLOWED) && msg->size <= d->smime_max_size;
	if (!sign_ok) {
		d->sign = POLICY_SIGN_NO;
	} else if (res->is_header_sign_triggered) {
		d->sign = POLICY_SIGN_YES;
		d->flags |= POLICY_D_SIGN_FORCED;
	} else if (is_cal && (either(sp, rp, POLICY_P_SMIME_SKIP_SIGNING_CALENDAR) ||
		either(sp, rp, POLICY_P_SMIME_SKIP_CALENDAR))) {
		d->sign = POLICY_SIGN_NO;
		d->why |= POLICY_WHY_CALENDAR_SKIP;
	} else if (either(sp, rp, POLICY_P_SMIME_ONLY_SIGN_WHEN_ENCRYPT)) {
		d->sign = POLICY_SIGN_WHEN_ENCRYPTED;
	} else {
		d->sign = POLICY_SIGN_YES;
	}
	switch (d->method) {
	case POLICY_METHOD_SMIME:
		if (d->sign != POLICY_SIGN_NO)
			d->flags |= POLICY_D_SIGN_OUTPUT;
		if (policy_props_is_true(rp, POLICY_P_SMIME_ENCRYPT_HEADERS))
			d->flags |= POLICY_D_ENCRYPT_HEADERS;
		if (policy_props_is_true(rp, POLICY_P_SMIME_ADD_ADDITIONAL_CERTIFICATES))
			d->flags |= POLICY_D_ADD_ADDITIONAL_CERTS;
		if (policy_props_is_true(rp, POLICY_P_SMIME_ADD_USER))
			d->flags |= POLICY_D_ADD_USER;
		break;
	case POLICY_METHOD_PDF:
		if (sign_ok && (policy_props_is_true(sp, POLICY_P_PDF_SIGN_EMAIL) ||
			(d->flags & POLICY_D_SIGN_FORCED)))
			d->flags |= POLICY_D_SIGN_OUTPUT;
		if (both(sp, rp, POLICY_P_PDF_REPLY_ALLOWED))
			d->flags |= POLICY_D_PDF_REPLY;
		if (policy_props_is_true(sp, POLICY_P_PASSWORD_SEND_TO_ORIGINATOR))
			d->flags |= POLICY_D_PASSWORDS_TO_ORIGINATOR;
		break;
	case POLICY_METHOD_PLAIN:
		if (d->sign == POLICY_SIGN_YES)
			d->flags |= POLICY_D_SIGN_OUTPUT;
		break;
	default:
		break;
	}
	if ((d->method == POLICY_METHOD_SMIME || d->method == POLICY_METHOD_PDF) &&
		policy_props_is_true(sp, POLICY_P_ENCRYPTION_NOTIFICATION))
		d->flags |= POLICY_D_NOTIFY_ENCRYPTED;
	if (res->subject_out != NULL)
		d->subject = sg_xstrdup(res->subject_out);
	return 0;
}

/* decide_internal - decryption candidate (F-POL-5) */
static int decide_internal(const struct policy_result *res, const struct policy_msg *msg,
	struct policy_decision *d, struct policy_subject_filter **filter, struct sg_error *err)
{
	/* the filter works on the subject with any trigger already removed */
	const char *subject = res->subject_out != NULL ? res->subject_out : msg->subject;

	const struct policy_props *rp = d->props;

	d->encrypt = POLICY_ENC_NO;
	d->why |= POLICY_WHY_INTERNAL;
	d->method = POLICY_METHOD_DECRYPT;
	d->sign = POLICY_SIGN_NO;
	if (policy_props_is_true(rp, POLICY_P_SMIME_STRICT))
		d->flags |= POLICY_D_DECRYPT_STRICT;
	if (policy_props_is_true(rp, POLICY_P_SMIME_REMOVE_SIGNATURE))
		d->flags |= POLICY_D_REMOVE_SIGNATURE;
	if (policy_props_is_true(rp, POLICY_P_ADD_SECURITY_INFO))
		d->flags |= POLICY_D_ADD_SECURITY_INFO;
	if (policy_props_is_true(rp, POLICY_P_SUBJECT_FILTER_ENABLED) && subject != NULL) {
		d->flags |= POLICY_D_SUBJECT_FILTER;
		if (*filter == NULL) {
			*filter = policy_subject_filter_parse(policy_props_get(rp,
				POLICY_P_SUBJECT_FILTER, NULL), err);
			if (*filter == NULL)
				return -1;
		}
		if (policy_subject_filter_apply(*filter, subject, &d->subject, err) < 0)
			return -1;
	}
	return 0;
}

/* make_key - equal keys = identical treatment = one output message */
static void make_key(struct policy_decision *d)
{
	unsigned mask = ~(unsigned)(POLICY_D_HAS_CERT | POLICY_D_CAN_PDF);
	/* each PDF recipient gets their own message (own password, D-2); strict
	 * decryption depends on the recipient's own keys */
	bool is_own = d->method == POLICY_METHOD_PDF ||
		(d->method == POLICY_METHOD_DECRYPT && (d->flags & POLICY_D_DECRYPT_STRICT));

	snprintf(d->key, sizeof(d->key), "%d|%d|%d|%x|%s|%s|%s|%llu|%s",
		d->is_internal, (int)d->encrypt, (int)d->method, d->flags & mask,
		d->enc_alg != NULL ? d->enc_alg : "", d->sign_alg != NULL ? d->sign_alg : "",
		d->key_transport != NULL ? d->key_transport : "",
		(unsigned long long)d->sign, is_own ? d->recipient : "");
}

static int decide_one(struct policy *p, struct policy_result *res,
	const struct policy_msg *msg, const struct policy_env *env, const char *rcpt,
	struct policy_decision *d, struct policy_subject_filter **filter, struct sg_error *err)
{
	const struct policy_props *sp = res->sender_props;
	const char *loc;

	if (policy_addr_normalize(rcpt, d->recipient, sizeof(d->recipient), err) < 0) {
		sg_error_prefix(err, "recipient: ");
		return -1;
	}
	if (policy_resolve_user(p, d->recipient, &d->props, err) < 0)
		return -1;
	loc = policy_props_get(d->props, POLICY_P_LOCALITY, NULL);
	d->is_internal = loc != NULL && strcmp(loc, "internal") == 0;
	d->enc_alg = policy_props_get(d->props, POLICY_P_SMIME_ENCRYPTION_ALGORITHM, NULL);
	d->sign_alg = policy_props_get(d->props, POLICY_P_SMIME_SIGNING_ALGORITHM, NULL);
	d->key_transport = policy_props_get(d->props, POLICY_P_SMIME_KEY_TRANSPORT, NULL);
	d->smime_max_size = min_size(sp, d->props, POLICY_P_SMIME_MAX_SIZE);
	d->pdf_max_size = min_size(sp, d->props, POLICY_P_PDF_MAX_SIZE);
	if (d->is_internal) {
		if (decide_internal(res, msg, d, filter, err) < 0)
			return -1;
	} else if (decide_external(res, msg, env, d, err) < 0) {
		return -1;
	}
	make_key(d);
	return 0;
}

/* originator - F-POL-3 */
static void originator(const struct policy_msg *msg, struct policy_result *res)
{
	if (policy_addr_first_mailbox(msg->from_header, res->originator,
		sizeof(res->originator)) == 1)
		res->origin = POLICY_ORIG_FROM;
	else if (policy_addr_first_mailbox(msg->sender_header, res->originator,
		sizeof(res->originator)) == 1)
		res->origin = POLICY_ORIG_SENDER;
	else if (msg->envelope_sender != NULL && *msg->envelope_sender != '\0' &&
		policy_addr_normalize(msg->envelope_sender, res->originator,
		sizeof(res->originator), NULL) == 0)
		res->origin = POLICY_ORIG_ENVELOPE;
	else {
		res->originator[0] = '\0';
		res->origin = POLICY_ORIG_NONE;
	}
}

int policy_decide(struct policy *p, const struct policy_msg *msg, const char *const *rcpts,
	size_t nrcpt, const struct policy_env *env, struct policy_result **res_r,
	struct sg_error *err)
{
	struct policy_result *res = sg_xcalloc(1, sizeof(*res));
	struct policy_subject_filter *filter = NULL;
	size_t i;
	int rc;

	*res_r = NULL;
	if (nrcpt > POLICY_RCPT_MAX) {
		sg_error_set(err, SG_E_LIMIT, "policy: more than %d recipients", POLICY_RCPT_MAX);
		goto bad;
	}
	res->rcpt = sg_xcalloc(nrcpt + 1, sizeof(*res->rcpt));
	if (policy_sync(p, err) < 0)
		goto bad;
	originator(msg, res);
	if (res->origin != POLICY_ORIG_NONE)
		rc = policy_resolve_user(p, res->originator, &res->sender_props, err);
	else
		rc = policy_resolve_global(p, &res->sender_props, err);
	if (rc < 0 || subject_trigger(p, res, msg, err) < 0)
		goto bad;
	if (policy_props_is_true(res->sender_props, POLICY_P_FORCE_ENCRYPT_ALLOWED)) {
		rc = header_trigger(p, res, msg, POLICY_P_FORCE_ENCRYPT_TRIGGER, err);
		if (rc < 0)
			goto bad;
		res->is_header_encrypt_triggered = rc == 1;
	}
	if (policy_props_is_true(res->sender_props, POLICY_P_FORCE_SIGNING_ALLOWED)) {
		rc = header_trigger(p, res, msg, POLICY_P_FORCE_SIGNING_TRIGGER, err);
		if (rc < 0)
			goto bad;
		res->is_header_sign_triggered = rc == 1;
	}
	for (i = 0; i < nrcpt; i++) {
		res->nrcpt = i + 1;
		if (decide_one(p, res, msg, env, rcpts[i], &res->rcpt[i], &filter, err) < 0)
			goto bad;
	}
	policy_subject_filter_free(&filter);
	*res_r = res;
	return 0;
bad:
	policy_subject_filter_free(&filter);
	policy_result_free(&res);
	return -1;
}

void policy_result_free(struct policy_result **rp)
{
	struct policy_result *r = *rp;
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->nrcpt; i++) {
		policy_props_free(&r->rcpt[i].props);
		free(r->rcpt[i].subject);
	}
	free(r->rcpt);
	policy_props_free(&r->sender_props);
	free(r->subject_out);
	free(r);
	*rp = NULL;
}

size_t policy_result_group(const struct policy_result *r, size_t *group_r)
{
	size_t i, j, ngroups = 0;

	for (i = 0; i < r->nrcpt; i++) {
		for (j = 0; j < i; j++) {
			if (strcmp(r->rcpt[i].key, r->rcpt[j].key) == 0)
				break;
		}
		group_r[i] = j < i ? group_r[j] : ngroups++;
	}
	return ngroups;
}
