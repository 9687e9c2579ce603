/*
 * mpa_pdf.c - the PDF method of the pipeline (SPEC F-PDF-1..5, D-2, F-SMS-3;
 * guide §4.1.2-4.1.3, §4.2.6, §13): for an external recipient whose
 * decision is "pdf", render the message as an encrypted PDF (src/pdf) with
 * the password of the recipient's D-2 route, and send the recipient a
 * carrier mail built from the route's template (src/template) with the PDF
 * attached, from the original envelope sender. Also the policy's can_pdf
 * question: does any route exist for a recipient?
 *
 * Routes (pdf_route_choose): EXISTING - the recipient's current static or
 * earlier password, template encrypted_pdf; ORIGINATOR - a generated
 * password, stored on the recipient and sent to the (internal) originator in
 * the passwords notification, template encrypted_pdf; OTP / OTP_INVITE -
 * the password derived from the recipient's client secret (created and
 * stored when missing and auto-create is on) and a new password ID,
 * templates encrypted_pdf_otp / _otp_invite (the invite carries a link
 * signed with the server secret, pdf_invite_link_make, for the portal); SMS - a generated password,
 * stored, queued as an SMS (template sms_password, src/sms) to the phone
 * number from the subject (only when the message has one recipient) or the
 * stored one, template encrypted_pdf_sms. Templates are those of the
 * originator's chain (user <- domain <- global), like every generated mail
 * about the sender's message.
 *
 * Called by the method dispatch (mpa_method.c) and by the policy through
 * mpa_decide.c, in an MPA worker thread with that worker's store
 * connection and policy resolver. pdf_init() must have run in main().
 *
 * Invariants: fail closed - any failure to build the PDF rejects the group
 * (encryption failed, the originator is notified), temporary failures defer
 * the whole message; the message is never sent in clear once PDF was
 * chosen, also when encryption was only "if possible". The SMS and the
 * passwords notification are made only after the PDF was built. Each PDF
 * recipient is a group of its own (policy key), so passwords never mix.
 * Passwords, OTPs and secrets are never logged.
 */
#include "mpa_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gmime/gmime.h>

#include "pdf/pdf.h"
#include "sms/sms.h"

/* The work directory under the data directory (decoded attachments in
 * clear while a PDF is built, and the finished PDFs until they are
 * spooled; pdf_message_write removes its own work files). */
#define MPA_PDF_DIR "pdf"

/* What the route decision knows about one recipient. */
struct mpa_pdf_facts {
	struct pdf_route_input in;
	char phone[SMS_PHONE_MAX];  /* where an SMS would go ("" none) */
	bool is_subject_phone;      /* phone came from the subject */
	bool is_phone_refused;      /* a subject number with several recipients
	                               and no stored number */
};

/* mpa_pdf_time - a password_date_set value (ISO 8601 UTC or epoch
 * seconds, as the policy stores it) as seconds; 0 when unset or bad */
static int64_t mpa_pdf_time(const char *v)
{
	struct tm tm;
	const char *end;
	int64_t t;

	if (v == NULL || *v == '\0')
		return 0;
	if (sg_parse_i64(v, 0, INT64_MAX, &t) == 0)
		return t;
	memset(&tm, 0, sizeof(tm));
	end = strptime(v, "%Y-%m-%dT%H:%M:%S", &tm);
	if (end == NULL || strcmp(end, "Z") != 0)
		return 0;
	t = (int64_t)timegm(&tm);
	return t > 0 ? t : 0;
}

/* mpa_pdf_is_set - a property with a non-empty value */
static bool mpa_pdf_is_set(const struct policy_props *pp, enum policy_prop_id id)
{
	const char *v = policy_props_get(pp, id, NULL);

	return v != NULL && *v != '\0';
}

/*
 * mpa_pdf_subject_phone - F-SMS-3: the number after the subject trigger, as
 * the policy finds it (the same functions: policy_subject_trigger,
 * policy_phone_from_tail), for the can_pdf question, which is asked before
 * the policy's result exists. 1 found (out), 0 none, -1 err (bad regex).
 */
static int mpa_pdf_subject_phone(struct mpa_ctx *ctx, const struct policy_props *sp,
	char *out, size_t outsz, struct sg_error *err)
{
	const char *trig = policy_props_get(sp, POLICY_P_SUBJECT_TRIGGER, NULL);
	const char *subject = mime_msg_header_get(ctx->msg, "Subject");
	char *rest = NULL;
	size_t tail = 0;
	int rc;

	out[0] = '\0';
	if (!policy_props_is_true(sp, POLICY_P_SMS_PHONE_NUMBER_IN_SUBJECT_ALLOWED) ||
	    !policy_props_is_true(sp, POLICY_P_SUBJECT_TRIGGER_ENABLED) || trig == NULL ||
	    *trig == '\0' || subject == NULL)
		return 0;
	rc = policy_subject_trigger(subject, trig,
		policy_props_is_true(sp, POLICY_P_SUBJECT_TRIGGER_IS_REGEX) ?
		POLICY_SUBJ_REGEX : 0, &rest, &tail, err);
	free(rest);
	if (rc <= 0)
		return rc;
	return policy_phone_from_tail(subject + tail, policy_props_get(sp,
		POLICY_P_SMS_DEFAULT_COUNTRY_CODE, NULL), out, outsz) == 1 ? 1 : 0;
}

/* mpa_pdf_orig_internal - mpa_originator_internal, asked once per message */
static int mpa_pdf_orig_internal(struct mpa_ctx *ctx, struct sg_error *err)
{
	int rc;

	if (ctx->pdf_orig_internal == 0) {
		rc = mpa_originator_internal(ctx, err);
		if (rc < 0)
			return -1;
		ctx->pdf_orig_internal = rc == 1 ? 1 : -1;
	}
	return ctx->pdf_orig_internal == 1;
}

/*
 * mpa_pdf_facts - the D-2 inputs for recipient props rp and sender props sp;
 * subject_phone: the number from the subject ("" none). Passwords go to the
 * originator only when it is internal (D-4: generated mail only to internal
 * originators). 0 or -1 (database).
 */
static int mpa_pdf_facts(struct mpa_ctx *ctx, const struct policy_props *rp,
	const struct policy_props *sp, const char *subject_phone, struct mpa_pdf_facts *f,
	struct sg_error *err)
{
	struct pdf_route_input *in = &f->in;
	const char *stored = policy_props_get(rp, POLICY_P_SMS_PHONE_NUMBER, NULL);
	int rc;

	memset(f, 0, sizeof(*f));
	in->password = policy_props_get(rp, POLICY_P_PASSWORD, NULL);
	in->password_date_set = mpa_pdf_time(policy_props_get(rp, POLICY_P_PASSWORD_DATE_SET,
		NULL));
	in->password_validity_minutes = policy_props_int(rp, POLICY_P_PASSWORD_VALIDITY_MINUTES);
	in->is_send_to_originator = policy_props_is_true(sp,
		POLICY_P_PASSWORD_SEND_TO_ORIGINATOR);
	if (in->is_send_to_originator && ctx->originator[0] != '\0') {
		rc = mpa_pdf_orig_internal(ctx, err);
		if (rc < 0)
			return -1;
		in->has_originator = rc == 1;
	}
	in->is_otp_enabled = policy_props_is_true(rp, POLICY_P_OTP_ENABLED);
	in->has_client_secret = mpa_pdf_is_set(rp, POLICY_P_OTP_CLIENT_SECRET);
	in->is_client_secret_auto = policy_props_is_true(rp,
		POLICY_P_OTP_AUTO_CREATE_CLIENT_SECRET);
	in->is_portal_enabled = policy_props_is_true(rp, POLICY_P_PORTAL_ENABLED);
	in->has_portal_password = mpa_pdf_is_set(rp, POLICY_P_PORTAL_PASSWORD);
	in->is_portal_auto_invite = policy_props_is_true(rp, POLICY_P_PORTAL_AUTO_INVITE);
	in->can_sms_send = policy_props_is_true(sp, POLICY_P_SMS_SEND_ALLOWED);
	in->can_sms_receive = policy_props_is_true(rp, POLICY_P_SMS_RECEIVE_ALLOWED);
	/* F-SMS-3: a number in the subject is for a message with one recipient
	 * only; it wins over the stored one (the sender chose it for this
	 * message) */
	if (subject_phone != NULL && *subject_phone != '\0' && ctx->env->nrcpts == 1) {
		sg_strlcpy(f->phone, subject_phone, sizeof(f->phone));
		f->is_subject_phone = true;
	} else if (stored != NULL && *stored != '\0') {
		sg_strlcpy(f->phone, stored, sizeof(f->phone));
	} else if (subject_phone != NULL && *subject_phone != '\0') {
		/* the route exists, the method refuses it with the reason */
		f->is_phone_refused = true;
	}
	in->has_phone = f->phone[0] != '\0' || f->is_phone_refused;
	in->now = sg_now();
	return 0;
}

int mpa_pdf_can(void *arg, const char *recipient, const struct policy_props *rprops,
	struct sg_error *err)
{
	struct mpa_ctx *ctx = arg;
	struct policy_props *sp = NULL;
	struct mpa_pdf_facts f;
	char phone[SMS_PHONE_MAX];
	int rc;

	/* D-2 step 1 needs only the recipient: the common static password
	 * answers without the sender's properties */
	if (pdf_password_is_current(policy_props_get(rprops, POLICY_P_PASSWORD, NULL),
		mpa_pdf_time(policy_props_get(rprops, POLICY_P_PASSWORD_DATE_SET, NULL)),
		policy_props_int(rprops, POLICY_P_PASSWORD_VALIDITY_MINUTES), sg_now()))
		return 1;
	/* the policy has resolved the originator already (cached there) */
	if (ctx->originator[0] != '\0')
		rc = policy_resolve_user(ctx->mpa->policy, ctx->originator, &sp, err);
	else
		rc = policy_resolve_global(ctx->mpa->policy, &sp, err);
	if (rc < 0)
		return -1;
	rc = mpa_pdf_subject_phone(ctx, sp, phone, sizeof(phone), err);
	if (rc >= 0)
		rc = mpa_pdf_facts(ctx, rprops, sp, phone, &f, err);
	policy_props_free(&sp);
	if (rc < 0) {
		sg_error_prefix(err, "PDF route of %s: ", recipient);
		return -1;
	}
	rc = pdf_route_choose(&f.in) != PDF_ROUTE_NONE ? 1 : 0;
	if (sg_log_is_tracing(SG_TRACE_MPA))
		sg_trace(SG_TRACE_MPA, "%s: PDF route for a recipient: %s", ctx->id,
			pdf_route_name(pdf_route_choose(&f.in)));
	return rc;
}

/* --------------------------------------------------------------- method */

/* One PDF being made: everything mpa_pdf_out frees. */
struct mpa_pdf_job {
	struct mpa_ctx *ctx;
	struct mpa_group *g;
	const struct policy_decision *d;
	const struct policy_props *sp;
	struct mpa_pdf_facts facts;
	enum pdf_route route;
	struct pdf_password pw;
	bool is_new_password;       /* generated now (stored on the recipient) */
	char *reply_link;
	char *invite_link;          /* route OTP_INVITE: the signed invitation */
	char dir[4096];
	int fd;                     /* the encrypted PDF (unlinked file) */
	struct mime_msg *carrier;
	struct pdf_result res;
};

/* mpa_pdf_reject - fail closed: the recipient gets nothing, the originator
 * the encryption-failed notification with reason */
static enum mpa_result mpa_pdf_reject(struct mpa_group *g, const char *what,
	const struct sg_error *e)
{
	char reason[sizeof(g->reason)];

	snprintf(reason, sizeof(reason), "PDF encryption failed: %s%s%s", what,
		e != NULL ? ": " : "", e != NULL ? e->msg : "");
	mpa_group_reject(g, MPA_ACT_ENCRYPT_FAILED, reason);
	return MPA_REJECT;
}

/* mpa_pdf_store - changes on the recipient's user object (created when
 * absent). 0 or -1. */
static int mpa_pdf_store(struct mpa_pdf_job *j, const struct policy_change *ch, size_t n,
	struct sg_error *err)
{
	if (policy_object_apply(j->ctx->mpa->policy, POLICY_KIND_USER, j->d->recipient, ch, n,
		err) < 0) {
		sg_error_prefix(err, "store the PDF password of %s: ", j->d->recipient);
		return -1;
	}
	return 0;
}

/* mpa_pdf_pw_len - password_length clamped to what a PDF password can be */
static unsigned mpa_pdf_pw_len(const struct policy_props *rp)
{
	int64_t n = policy_props_int(rp, POLICY_P_PASSWORD_LENGTH);

	if (n < PDF_PASSWORD_MIN_LEN)
		return PDF_PASSWORD_MIN_LEN;
	if (n > PDF_PASSWORD_MAX_LEN)
		return PDF_PASSWORD_MAX_LEN;
	return (unsigned)n;
}

/*
 * mpa_pdf_password - j->pw for j->route: the stored one, a generated one
 * (stored with a new ID and date), or the OTP (client secret created when
 * missing). 0, or -1 with err (database: temporary; others permanent).
 */
static int mpa_pdf_password(struct mpa_pdf_job *j, struct sg_error *err)
{
	const struct policy_props *rp = j->d->props;
	const struct pdf_route_input *in = &j->facts.in;
	char date[32], secret[PDF_CLIENT_SECRET_LEN + 1];
	const char *s;
	int rc;

	switch (j->route) {
	case PDF_ROUTE_EXISTING:
		if (strlen(in->password) >= sizeof(j->pw.password)) {
			sg_error_set(err, SG_E_INVAL, "the stored password is too long");
			return -1;
		}
		sg_strlcpy(j->pw.password, in->password, sizeof(j->pw.password));
		s = policy_props_get(rp, POLICY_P_PASSWORD_ID, NULL);
		sg_strlcpy(j->pw.id, s != NULL && strlen(s) < sizeof(j->pw.id) ? s : "",
			sizeof(j->pw.id));
		j->pw.date_set = in->password_date_set;
		return 0;
	case PDF_ROUTE_ORIGINATOR:
	case PDF_ROUTE_SMS:
		rc = pdf_password_next(in->password, policy_props_get(rp, POLICY_P_PASSWORD_ID,
			NULL), in->password_date_set, in->password_validity_minutes,
			mpa_pdf_pw_len(rp), in->now, &j->pw, err);
		if (rc < 0)
			return -1;
		j->is_new_password = rc == 1;
		if (rc == 0)
			return 0;
		snprintf(date, sizeof(date), "%lld", (long long)j->pw.date_set);
		return mpa_pdf_store(j, (const struct policy_change[]){
			{"password", j->pw.password}, {"password_id", j->pw.id},
			{"password_date_set", date}}, 3, err);
	case PDF_ROUTE_OTP:
	case PDF_ROUTE_OTP_INVITE:
		s = policy_props_get(rp, POLICY_P_OTP_CLIENT_SECRET, NULL);
		if (s == NULL || *s == '\0') {
			/* route OTP without a secret means auto-create is on */
			if (pdf_otp_client_secret_new(secret, sizeof(secret), err) < 0 ||
			    mpa_pdf_store(j, (const struct policy_change[]){
				{"otp_client_secret", secret}}, 1, err) < 0)
				return -1;
			s = secret;
		}
		rc = pdf_password_id_new(j->pw.id, sizeof(j->pw.id), err) < 0 ||
			pdf_otp_derive(s, j->pw.id, mpa_pdf_pw_len(rp), j->pw.password,
			sizeof(j->pw.password), err) < 0 ? -1 : 0;
		explicit_bzero(secret, sizeof(secret));
		if (rc < 0)
			return -1;
		j->pw.date_set = in->now;
		j->is_new_password = true;
		/* the ID shows the recipient's last password ID (guide §4.1.2);
		 * the OTP itself is never stored: the portal derives it again */
		return mpa_pdf_store(j, (const struct policy_change[]){
			{"password_id", j->pw.id}}, 1, err);
	case PDF_ROUTE_NONE:
		break;
	}
	sg_error_set(err, SG_E_POLICY, "no PDF password route");
	return -1;
}

/* mpa_pdf_reply - the reply link (F-PDF-5) when the decision allows one
 * and the originator, reply URL and server secret exist; a link that
 * cannot be made is left out (logged), it never stops the message */
static void mpa_pdf_reply(struct mpa_pdf_job *j)
{
	const char *url = policy_props_get(j->sp, POLICY_P_PDF_REPLY_URL, NULL);
	const char *secret = policy_props_get(j->sp, POLICY_P_SERVER_SECRET, NULL);
	int64_t minutes = policy_props_int(j->sp, POLICY_P_PDF_REPLY_VALIDITY_MINUTES);
	struct sg_error e;

	if (!(j->d->flags & POLICY_D_PDF_REPLY) || j->ctx->originator[0] == '\0')
		return;
	if (url == NULL || *url == '\0' || secret == NULL || *secret == '\0') {
		sg_log_mail(SG_LOG_WARN, j->ctx->id, "PDF without reply link: no %s",
			url == NULL || *url == '\0' ? "pdf_reply_url" : "server_secret");
		return;
	}
	j->reply_link = pdf_reply_link_make(url, secret, j->d->recipient, j->ctx->originator,
		pdf_reply_expiry(j->facts.in.now, minutes), &e);
	if (j->reply_link == NULL)
		sg_log_mail(SG_LOG_WARN, j->ctx->id, "PDF without reply link: %s", e.msg);
}

/*
 * mpa_pdf_invite - route OTP_INVITE: the signed invitation link (pdf.h:
 * <portal_base_url>/invite?p=invite&r=&i=&e=&h=) for the recipient and
 * this PDF's password ID, valid PDF_INVITE_VALIDITY_MINUTES. Without it the
 * recipient could never set a portal password and read the PDF, so a
 * missing server secret or a portal URL that cannot carry a link is an
 * error (SG_E_CONFIG: the message waits in the error queue), not a mail
 * with a dead link. 0 or -1.
 */
static int mpa_pdf_invite(struct mpa_pdf_job *j, struct sg_error *err)
{
	const char *base = policy_props_get(j->sp, POLICY_P_PORTAL_BASE_URL, NULL);
	const char *secret = policy_props_get(j->sp, POLICY_P_SERVER_SECRET, NULL);
	char *url;
	size_t len;

	if (secret == NULL || *secret == '\0' || base == NULL || *base == '\0') {
		sg_error_set(err, SG_E_CONFIG, "no %s for the portal invitation link",
			secret == NULL || *secret == '\0' ? "server_secret" : "portal_base_url");
		return -1;
	}
	len = strlen(base);
	while (len > 0 && base[len - 1] == '/')
		len--;
	url = sg_xasprintf("%.*s/invite", (int)len, base);
	j->invite_link = pdf_invite_link_make(url, secret, j->d->recipient, j->pw.id,
		pdf_invite_expiry(j->facts.in.now, 0), err);
	free(url);
	if (j->invite_link == NULL) {
		err->code = SG_E_CONFIG;
		sg_error_prefix(err, "portal invitation link: ");
		return -1;
	}
	return 0;
}

/* mpa_pdf_render - the encrypted PDF into an unlinked file under
 * <data_dir>/pdf (j->fd). 0 or -1. */
static int mpa_pdf_render(struct mpa_pdf_job *j, struct sg_error *err)
{
	const struct sg_config *cfg = j->ctx->mpa->conf.cfg;
	struct mpa_group *g = j->g;
	struct pdf_options opt = {0};
	char path[sizeof(j->dir) + 32];

	if (cfg == NULL || cfg->data_dir == NULL || cfg->data_dir[0] == '\0') {
		sg_error_set(err, SG_E_CONFIG, "no data directory for the PDF work files");
		return -1;
	}
	snprintf(j->dir, sizeof(j->dir), "%s/" MPA_PDF_DIR, cfg->data_dir);
	if (sg_mkdir_p(j->dir, 0700, err) < 0)
		return -1;
	/* a file without a name: nothing is left behind by a crash; the open
	 * fd keeps it until the output is spooled */
	j->fd = open(j->dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (j->fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
		snprintf(path, sizeof(path), "%s/out.XXXXXX", j->dir);
		j->fd = mkostemp(path, O_CLOEXEC);
		if (j->fd >= 0)
			(void)unlink(path);
	}
	if (j->fd < 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "PDF output file in %s", j->dir);
		return -1;
	}
	opt.user_password = j->pw.password;
	opt.cipher = PDF_CIPHER_AES256;
	opt.reply_link = j->reply_link;
	opt.tmp_dir = j->dir;
	opt.max_size = j->d->pdf_max_size;
	opt.mail_id = j->ctx->id;
	return pdf_message_write(g->msg != NULL ? g->msg : j->ctx->msg, &opt, j->fd, &j->res,
		err);
}

/* mpa_pdf_template_of - the carrier template of a route (D-2) */
static enum template_id mpa_pdf_template_of(enum pdf_route r)
{
	switch (r) {
	case PDF_ROUTE_SMS:
		return TEMPLATE_ENCRYPTED_PDF_SMS;
	case PDF_ROUTE_OTP:
		return TEMPLATE_ENCRYPTED_PDF_OTP;
	case PDF_ROUTE_OTP_INVITE:
		return TEMPLATE_ENCRYPTED_PDF_OTP_INVITE;
	default:
		return TEMPLATE_ENCRYPTED_PDF;
	}
}

/* mpa_pdf_phone_masked - "+31*******678": enough for the recipient to
 * recognise the number, not the number itself (the carrier mail travels
 * in clear) */
static void mpa_pdf_phone_masked(const char *phone, char *out, size_t outsz)
{
	size_t i, n = strlen(phone);

	sg_strlcpy(out, phone, outsz);
	for (i = 3; i + 3 < n && i + 1 < outsz; i++)
		out[i] = '*';
}

/*
 * mpa_pdf_render_tpl - mail template id of the originator's chain with
 * vars into *msg_r; a stored template that does not render falls back to
 * the factory text (logged). 0 or -1 (database).
 */
static int mpa_pdf_render_tpl(struct mpa_pdf_job *j, enum template_id id,
	const struct template_var *vars, size_t n, struct mime_msg **msg_r,
	struct sg_error *err)
{
	struct template_render_opts opts = {j->ctx->mpa->hostname, 0};
	struct template_src *src = NULL;
	struct sg_error rerr;
	int rc;

	if (template_load_props(j->ctx->mpa->conf.db, id, j->sp, &src, err) < 0) {
		sg_error_prefix(err, "template %s: ", template_def(id)->name);
		return -1;
	}
	rc = template_render_mail(id, src->text, vars, n, &opts, msg_r, &rerr);
	if (rc < 0) {
		sg_log_mail(SG_LOG_ERR, j->ctx->id, "template %s of %s does not render (%s): "
			"factory text used", template_def(id)->name,
			src->owner[0] != '\0' ? src->owner : "factory", rerr.msg);
		rc = template_render_mail(id, template_def(id)->factory, vars, n, &opts, msg_r,
			err);
	}
	template_src_free(&src);
	if (rc < 0)
		sg_error_prefix(err, "template %s: ", template_def(id)->name);
	return rc;
}

/* mpa_pdf_from - the first mailbox of the input's From field as one
 * "Name <addr>" (the name quoted when it needs it, so a comma in it stays
 * one address in the carrier's From), caller frees; NULL when there is
 * none */
static char *mpa_pdf_from(struct mime_msg *in)
{
	const char *raw = mime_msg_header_get_raw(in, "From");
	InternetAddressList *l;
	char *s, *r = NULL;
	int i, n;

	if (raw == NULL)
		return NULL;
	l = internet_address_list_parse(NULL, raw);
	if (l == NULL)
		return NULL;
	n = internet_address_list_length(l);
	for (i = 0; i < n && r == NULL; i++) {
		InternetAddress *ia = internet_address_list_get_address(l, i);

		if (!INTERNET_ADDRESS_IS_MAILBOX(ia))
			continue;
		s = internet_address_to_string(ia, NULL, FALSE);
		if (s != NULL && *s != '\0')
			r = sg_xstrdup(s);
		g_free(s);
	}
	g_object_unref(l);
	return r;
}

/* mpa_pdf_carrier - the mail to the recipient with the PDF (j->carrier) */
static int mpa_pdf_carrier(struct mpa_pdf_job *j, struct sg_error *err)
{
	struct mime_msg *in = j->g->msg != NULL ? j->g->msg : j->ctx->msg;
	char *from = mpa_pdf_from(in);
	const char *subject = j->g->subject != NULL ? j->g->subject :
		mime_msg_header_get(in, "Subject");
	const char *otp_url = policy_props_get(j->d->props, POLICY_P_OTP_URL, NULL);
	char phone[SMS_PHONE_MAX];
	int rc;

	mpa_pdf_phone_masked(j->facts.phone, phone, sizeof(phone));
	{
		const struct template_var vars[] = {
			{"from", from != NULL ? from : j->ctx->originator},
			{"to", j->d->recipient},
			{"subject", subject != NULL ? subject : ""},
			{"mail_id", j->ctx->id},
			{"password_id", j->pw.id},
			{"reply_url", j->reply_link != NULL ? j->reply_link : ""},
			{"phone", phone},
			{"otp_url", otp_url != NULL ? otp_url : ""},
			{"invite_url", j->invite_link != NULL ? j->invite_link : ""},
		};
		enum template_id id = mpa_pdf_template_of(j->route);
		size_t i, n = 0;
		struct template_var use[sizeof(vars) / sizeof(vars[0])];
		const struct template_def *td = template_def(id);

		/* each template receives only its own variables */
		for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
			size_t k;

			for (k = 0; k < td->nvars; k++)
				if (strcmp(td->vars[k].name, vars[i].name) == 0)
					use[n++] = vars[i];
		}
		rc = mpa_pdf_render_tpl(j, id, use, n, &j->carrier, err);
	}
	free(from);
	if (rc < 0)
		return -1;
	if (template_msg_attach(j->carrier, "application/pdf", NULL, j->fd, err) < 0) {
		sg_error_prefix(err, "attach the PDF: ");
		return -1;
	}
	return 0;
}

/* mpa_pdf_notify_passwords - the passwords notification (D-2, route
 * ORIGINATOR) to the internal originator. 0 or -1. */
static int mpa_pdf_notify_passwords(struct mpa_pdf_job *j, struct sg_error *err)
{
	struct mime_msg *in = j->g->msg != NULL ? j->g->msg : j->ctx->msg;
	const char *subject = mime_msg_header_get(in, "Subject");
	int64_t minutes = j->facts.in.password_validity_minutes;
	char expires[32] = "";

	/* validity > 0: the stored password is reused until then; 0 (one per
	 * message) and -1 (never) give no end date */
	if (minutes > 0 && j->pw.date_set > 0)
		sg_time_iso8601(j->pw.date_set + 60 * minutes, expires, sizeof(expires));
	{
		const struct template_var vars[] = {
			{"subject", subject != NULL ? subject : ""},
			{"mail_id", j->ctx->id},
			{"passwords.recipient", j->d->recipient},
			{"passwords.password", j->pw.password},
			{"passwords.password_id", j->pw.id},
			{"passwords.expires", expires},
		};

		return mpa_notify_originator(j->ctx, TEMPLATE_PASSWORDS_NOTIFICATION, vars,
			sizeof(vars) / sizeof(vars[0]), err);
	}
}

/* mpa_pdf_sms - the password SMS (D-2, route SMS) into the queue. 0 or -1. */
static int mpa_pdf_sms(struct mpa_pdf_job *j, struct sg_error *err)
{
	const enum template_id id = TEMPLATE_SMS_PASSWORD;
	const struct template_var vars[] = {
		{"password", j->pw.password},
		{"password_id", j->pw.id},
		{"from", j->ctx->originator},
	};
	struct template_src *src = NULL;
	struct sg_error rerr;
	char *text = NULL;
	int rc;

	if (template_load_props(j->ctx->mpa->conf.db, id, j->sp, &src, err) < 0) {
		sg_error_prefix(err, "template %s: ", template_def(id)->name);
		return -1;
	}
	rc = template_render_sms(id, src->text, vars, 3, &text, &rerr);
	if (rc < 0) {
		sg_log_mail(SG_LOG_ERR, j->ctx->id, "template %s of %s does not render (%s): "
			"factory text used", template_def(id)->name,
			src->owner[0] != '\0' ? src->owner : "factory", rerr.msg);
		rc = template_render_sms(id, template_def(id)->factory, vars, 3, &text, err);
	}
	template_src_free(&src);
	if (rc == 0)
		rc = sms_enqueue(j->ctx->mpa->conf.db, j->facts.phone, text, j->ctx->id, NULL,
			err);
	if (text != NULL) {
		/* it holds the password */
		explicit_bzero(text, strlen(text));
		free(text);
	}
	if (rc < 0)
		sg_error_prefix(err, "password SMS: ");
	return rc;
}

/* mpa_pdf_job_free - everything of j; the password leaves memory */
static void mpa_pdf_job_free(struct mpa_pdf_job *j)
{
	if (j->fd >= 0)
		close(j->fd);
	mime_msg_free(&j->carrier);
	free(j->reply_link);
	free(j->invite_link);
	explicit_bzero(&j->pw, sizeof(j->pw));
}

/* mpa_pdf_failed - the result for a failure err of step what: temporary
 * -> defer the message; bad input, limits, refused -> reject the group;
 * the rest (library, configuration) -> error queue */
static enum mpa_result mpa_pdf_failed(struct mpa_group *g, const char *what,
	struct sg_error *err)
{
	switch (sg_errc_class(err->code)) {
	case SG_EC_TEMPORARY:
		sg_error_prefix(err, "%s: ", what);
		return MPA_DEFER;
	case SG_EC_PERMANENT:
		return mpa_pdf_reject(g, what, err);
	case SG_EC_INTERNAL:
		break;
	}
	sg_error_prefix(err, "%s: ", what);
	return MPA_ERROR;
}

enum mpa_result mpa_pdf_out(struct mpa_ctx *ctx, struct mpa_group *g, struct sg_error *err)
{
	const struct policy_result *pres = ctx->results[0];
	struct mpa_pdf_job j;
	enum mpa_result r;
	char esc[POLICY_ADDR_MAX * 4];

	memset(&j, 0, sizeof(j));
	j.ctx = ctx;
	j.g = g;
	j.d = g->dec;
	j.sp = pres->sender_props;
	j.fd = -1;
	if (mime_msg_is_opaque(g->msg != NULL ? g->msg : ctx->msg)) {
		r = mpa_pdf_reject(g, "the message has too many MIME parts", NULL);
		goto out;
	}
	if (mpa_pdf_facts(ctx, j.d->props, j.sp, pres->phone, &j.facts, err) < 0) {
		r = mpa_pdf_failed(g, "password route", err);
		goto out;
	}
	j.route = pdf_route_choose(&j.facts.in);
	if (j.route == PDF_ROUTE_NONE) {
		/* the properties changed since the decision */
		r = mpa_pdf_reject(g, "no password for the recipient", NULL);
		goto out;
	}
	if (j.route == PDF_ROUTE_SMS && j.facts.is_phone_refused) {
		r = mpa_pdf_reject(g, "a phone number in the subject is only allowed for a "
			"message with one recipient", NULL);
		goto out;
	}
	if (mpa_pdf_password(&j, err) < 0) {
		r = mpa_pdf_failed(g, "password", err);
		goto out;
	}
	if (j.route == PDF_ROUTE_OTP_INVITE && mpa_pdf_invite(&j, err) < 0) {
		r = mpa_pdf_failed(g, "invitation", err);
		goto out;
	}
	mpa_pdf_reply(&j);
	if (mpa_pdf_render(&j, err) < 0) {
		r = mpa_pdf_failed(g, "render", err);
		goto out;
	}
	if (mpa_pdf_carrier(&j, err) < 0) {
		r = mpa_pdf_failed(g, "carrier message", err);
		goto out;
	}
	if (j.route == PDF_ROUTE_ORIGINATOR && j.is_new_password &&
	    mpa_pdf_notify_passwords(&j, err) < 0) {
		r = mpa_result_of_error(err);
		goto out;
	}
	if (j.route == PDF_ROUTE_SMS && j.is_new_password && mpa_pdf_sms(&j, err) < 0) {
		r = mpa_pdf_failed(g, "SMS", err);
		goto out;
	}
	mime_msg_free(&g->msg);
	g->msg = j.carrier;
	j.carrier = NULL;
	g->done = "pdf";
	sg_log_esc(esc, sizeof(esc), j.d->recipient, strlen(j.d->recipient));
	sg_log_mail(SG_LOG_INFO, ctx->id, "PDF encrypted for <%s>: route=%s, password_id=%s, "
		"pages=%u, attachments=%u, size=%ju%s%s", esc, pdf_route_name(j.route),
		j.pw.id[0] != '\0' ? j.pw.id : "-", j.res.pages, j.res.attachments,
		(uintmax_t)j.res.size, j.reply_link != NULL ? ", reply link" : "",
		j.invite_link != NULL ? ", invite link" : "");
	/* pdf_sign_email: the carrier mail is signed when the originator has a
	 * usable signing certificate (mpa_smime.c; unsigned otherwise) */
	r = MPA_NEXT;
	if (j.d->flags & POLICY_D_SIGN_OUTPUT) {
		r = mpa_smime_sign_only(ctx, g, err);
		if (g->done != NULL && strcmp(g->done, "smime-sign") == 0)
			g->done = "pdf-signed";
		else
			g->done = "pdf";
	}
out:
	mpa_pdf_job_free(&j);
	return r;
}
