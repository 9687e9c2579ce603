/*
 * template_defs.c - the template catalogue (guide §6, SPEC F-TPL-1): for each
 * template its name, kind, the variables it receives (with sample values for
 * validation) and the factory default text.
 *
 * Constant data; read from any thread. Every factory text must pass
 * template_validate (tested by test_template_render).
 */
#include "template_int.h"

#include <string.h>

/* ------------------------------------------------------------ variables */

#define V_FROM_SYS {"from", TEMPLATE_VAR_TEXT, NULL, "Mail Gateway <postmaster@example.com>", \
	"From of the generated message (system_mail_from)"}
#define V_TO_ORIG {"to", TEMPLATE_VAR_TEXT, NULL, "alice@example.com", \
	"the originator of the original message (the addressee)"}
#define V_SUBJECT {"subject", TEMPLATE_VAR_TEXT, NULL, "Quarterly report", \
	"Subject of the original message (decoded)"}
#define V_MAIL_ID {"mail_id", TEMPLATE_VAR_TEXT, NULL, "18F3A2B4C5D6E7F8", \
	"mail ID of the original message"}
#define V_RCPTS(help) {"recipients", TEMPLATE_VAR_LIST, NULL, "bob@example.net", help}
#define V_FROM_ORIG {"from", TEMPLATE_VAR_TEXT, NULL, "Alice <alice@example.com>", \
	"From of the original message (the new message comes from the sender)"}
#define V_TO_RCPT {"to", TEMPLATE_VAR_TEXT, NULL, "bob@example.net", \
	"the recipient of the encrypted PDF"}
#define V_PASSWORD_ID {"password_id", TEMPLATE_VAR_TEXT, NULL, "K7QX2M", \
	"ID of the password that opens the PDF (empty for a static password without ID)"}
#define V_REPLY_URL {"reply_url", TEMPLATE_VAR_TEXT, NULL, \
	"https://portal.example.com/reply?r=abc", \
	"portal URL for an encrypted reply (empty when replies are not allowed)"}
#define V_OTP_URL {"otp_url", TEMPLATE_VAR_TEXT, NULL, "https://portal.example.com/otp", \
	"portal page where the recipient gets the one-time password"}
#define V_RULES {"rules", TEMPLATE_VAR_LIST, NULL, "Credit card numbers", \
	"names of the DLP rules that matched"}
#define V_QID {"quarantine_id", TEMPLATE_VAR_TEXT, NULL, "18F3A2B4C5D6E7F8", \
	"ID of the quarantined message"}
#define V_REASON(help) {"reason", TEMPLATE_VAR_TEXT, NULL, "no valid certificate", help}
#define V_ACTOR {"actor", TEMPLATE_VAR_TEXT, NULL, "admin", \
	"who did it: \"admin\" or \"sender\""}
#define V_EXPIRE_DAYS {"expire_days", TEMPLATE_VAR_TEXT, NULL, "14", \
	"days a quarantined message is kept before it expires"}

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct template_var_def v_pdf[] = {
	V_FROM_ORIG, V_TO_RCPT, V_SUBJECT, V_MAIL_ID, V_PASSWORD_ID, V_REPLY_URL,
};
static const struct template_var_def v_pdf_sms[] = {
	V_FROM_ORIG, V_TO_RCPT, V_SUBJECT, V_MAIL_ID, V_PASSWORD_ID, V_REPLY_URL,
	{"phone", TEMPLATE_VAR_TEXT, NULL, "+31 6 ***** 678",
		"the number the password was sent to (as the caller formats it)"},
};
static const struct template_var_def v_pdf_otp[] = {
	V_FROM_ORIG, V_TO_RCPT, V_SUBJECT, V_MAIL_ID, V_PASSWORD_ID, V_REPLY_URL, V_OTP_URL,
};
static const struct template_var_def v_pdf_otp_invite[] = {
	V_FROM_ORIG, V_TO_RCPT, V_SUBJECT, V_MAIL_ID, V_PASSWORD_ID, V_REPLY_URL, V_OTP_URL,
	{"invite_url", TEMPLATE_VAR_TEXT, NULL, "https://portal.example.com/signup?t=abc",
		"portal page where the recipient sets a portal password first"},
};
static const struct template_var_def v_failed[] = {
	V_FROM_SYS, V_TO_ORIG, V_SUBJECT, V_MAIL_ID,
	V_RCPTS("recipients that got nothing"),
	V_REASON("why the message could not be encrypted"),
};
static const struct template_var_def v_encrypted[] = {
	V_FROM_SYS, V_TO_ORIG, V_SUBJECT, V_MAIL_ID,
	V_RCPTS("recipients that got the message encrypted"),
	{"method", TEMPLATE_VAR_TEXT, NULL, "S/MIME", "\"S/MIME\" or \"PDF\""},
};
static const char *const f_passwords[] = {"recipient", "password", "password_id", "expires",
	NULL};
static const struct template_var_def v_passwords[] = {
	V_FROM_SYS, V_TO_ORIG, V_SUBJECT, V_MAIL_ID,
	{"passwords", TEMPLATE_VAR_RECORDS, f_passwords, "pw",
		"one record per recipient: recipient, password, password_id, expires "
		"(ISO 8601 UTC, empty = never)"},
};
static const struct template_var_def v_sms_password[] = {
	{"password", TEMPLATE_VAR_TEXT, NULL, "Xk4-pQ9-zR2", "the PDF password"},
	V_PASSWORD_ID,
	{"from", TEMPLATE_VAR_TEXT, NULL, "alice@example.com",
		"address of the sender of the message"},
};
static const struct template_var_def v_sms_pfx[] = {
	{"password", TEMPLATE_VAR_TEXT, NULL, "Xk4-pQ9-zR2", "the PKCS#12 password"},
	{"email", TEMPLATE_VAR_TEXT, NULL, "bob@example.com",
		"the address the certificate was issued for"},
};
static const struct template_var_def v_pfx_email[] = {
	V_FROM_SYS,
	{"to", TEMPLATE_VAR_TEXT, NULL, "bob@example.com", "the addressee"},
	{"email", TEMPLATE_VAR_TEXT, NULL, "bob@example.com",
		"the address the certificate was issued for"},
	{"phone", TEMPLATE_VAR_TEXT, NULL, "+31 6 ***** 678",
		"where the password was sent by SMS (empty: not by SMS)"},
};
static const struct template_var_def v_dlp[] = {
	V_FROM_SYS, V_TO_ORIG, V_SUBJECT, V_MAIL_ID,
	V_RCPTS("recipients of the message"), V_RULES,
};
static const struct template_var_def v_dlp_quarantine[] = {
	V_FROM_SYS, V_TO_ORIG, V_SUBJECT, V_MAIL_ID,
	V_RCPTS("recipients of the message"), V_RULES, V_QID,
	{"release_url", TEMPLATE_VAR_TEXT, NULL, "https://portal.example.com/dlp?q=abc",
		"portal page where the sender releases or deletes it (empty: not allowed)"},
	V_EXPIRE_DAYS,
};
static const struct template_var_def v_dlp_error[] = {
	V_FROM_SYS, V_TO_ORIG, V_SUBJECT, V_MAIL_ID,
	V_RCPTS("recipients of the message"),
	V_REASON("what went wrong"),
};
static const struct template_var_def v_dlp_done[] = {
	V_FROM_SYS, V_TO_ORIG, V_SUBJECT, V_MAIL_ID,
	V_RCPTS("recipients of the message"), V_QID, V_ACTOR,
};
static const struct template_var_def v_dlp_expire[] = {
	V_FROM_SYS, V_TO_ORIG, V_SUBJECT, V_MAIL_ID,
	V_RCPTS("recipients of the message"), V_QID, V_EXPIRE_DAYS,
};

/* ------------------------------------------------------- factory texts */

#define H_NOTIFY(subject) \
	"From: ${from}\n" \
	"To: ${to}\n" \
	"Subject: " subject "\n" \
	"Auto-Submitted: auto-generated\n" \
	"MIME-Version: 1.0\n" \
	"Content-Type: text/plain; charset=utf-8\n" \
	"Content-Transfer-Encoding: 8bit\n" \
	"\n"

#define FOOT_ORIG \
	"\n" \
	"Subject: ${subject}\n" \
	"Mail ID: ${mail_id}\n"

#define PDF_HEAD \
	"From: ${from}\n" \
	"To: ${to}\n" \
	"Subject: ${subject}\n" \
	"MIME-Version: 1.0\n" \
	"Content-Type: multipart/mixed; boundary=\"=-sealgate-pdf-0\"\n" \
	"\n" \
	"This is a multi-part message in MIME format.\n" \
	"\n" \
	"--=-sealgate-pdf-0\n" \
	"Content-Type: text/plain; charset=utf-8\n" \
	"Content-Transfer-Encoding: 8bit\n" \
	"\n" \
	"${from} sent you an encrypted message.\n" \
	"\n" \
	"The message and its attachments are in the attached PDF file. Open it\n" \
	"with a PDF reader and enter the password.\n" \
	"\n"

#define PDF_TAIL \
	"<#if reply_url>\n" \
	"\n" \
	"To reply securely, use the reply link in the PDF.\n" \
	"</#if>\n" \
	"\n" \
	"--=-sealgate-pdf-0\n" \
	"Content-Type: application/pdf; name=\"message.pdf\"\n" \
	"Content-Disposition: attachment; filename=\"message.pdf\"\n" \
	"Content-Transfer-Encoding: base64\n" \
	"\n" \
	"JVBERi0xLjQKJSBTZWFsZ2F0ZSBwbGFjZWhvbGRlcjogcmVwbGFjZWQgYnkgdGhlIGVuY3J5cHRlZCBQREYK\n" \
	"\n" \
	"--=-sealgate-pdf-0--\n"

#define PDF_PWID \
	"<#if password_id>\n" \
	"Password ID: ${password_id}\n" \
	"</#if>\n"

static const char t_pdf[] = PDF_HEAD
	"Use the password you received earlier for messages from this sender.\n"
	PDF_PWID PDF_TAIL;

static const char t_pdf_sms[] = PDF_HEAD
	"The password was sent to you by SMS<#if phone> (${phone})</#if>.\n"
	PDF_PWID PDF_TAIL;

static const char t_pdf_otp[] = PDF_HEAD
	"Get the password for this message at:\n"
	"\n"
	"  ${otp_url}\n"
	"\n"
	"Password ID: ${password_id}\n"
	PDF_TAIL;

static const char t_pdf_otp_invite[] = PDF_HEAD
	"To get the password for this message, first choose your own portal\n"
	"password at:\n"
	"\n"
	"  ${invite_url}\n"
	"\n"
	"Then get the password for this message at:\n"
	"\n"
	"  ${otp_url}\n"
	"\n"
	"Password ID: ${password_id}\n"
	PDF_TAIL;

static const char t_failed[] = H_NOTIFY("Message not sent: encryption failed")
	"Your message could not be encrypted for the recipients below, and\n"
	"encryption was required. They did not receive it in any form.\n"
	"\n"
	"Reason: ${reason}\n"
	"\n"
	"Recipients:\n"
	"<#list recipients as r>\n"
	"  ${r}\n"
	"</#list>\n"
	FOOT_ORIG;

static const char t_encrypted[] = H_NOTIFY("Message sent encrypted: ${subject}")
	"Your message was sent encrypted (${method}) to:\n"
	"\n"
	"<#list recipients as r>\n"
	"  ${r}\n"
	"</#list>\n"
	FOOT_ORIG;

static const char t_passwords[] = H_NOTIFY("Passwords for your encrypted message")
	"Your message was sent as an encrypted PDF. The recipients need these\n"
	"passwords to open it; pass them on by another channel than e-mail.\n"
	"\n"
	"<#list passwords as p>\n"
	"  ${p.recipient}: ${p.password}<#if p.password_id> (ID ${p.password_id})</#if>"
	"<#if p.expires>, valid until ${p.expires}</#if>\n"
	"</#list>\n"
	FOOT_ORIG;

static const char t_sms_password[] =
	"Password for the encrypted message from ${from}: ${password}"
	"<#if password_id> (ID ${password_id})</#if>\n";

static const char t_sms_pfx[] =
	"Password for the certificate of ${email}: ${password}\n";

static const char t_pfx_email[] =
	"From: ${from}\n"
	"To: ${to}\n"
	"Subject: Your certificate and private key\n"
	"Auto-Submitted: auto-generated\n"
	"MIME-Version: 1.0\n"
	"Content-Type: multipart/mixed; boundary=\"=-sealgate-pfx-0\"\n"
	"\n"
	"--=-sealgate-pfx-0\n"
	"Content-Type: text/plain; charset=utf-8\n"
	"Content-Transfer-Encoding: 8bit\n"
	"\n"
	"The attached file holds the certificate and private key for ${email},\n"
	"protected by a password.\n"
	"<#if phone>\n"
	"The password was sent by SMS to ${phone}.\n"
	"<#else>\n"
	"Your administrator will give you the password.\n"
	"</#if>\n"
	"\n"
	"Import the file into your mail program to sign and decrypt messages.\n"
	"\n"
	"--=-sealgate-pfx-0\n"
	"Content-Type: application/x-pkcs12; name=\"certificate.p12\"\n"
	"Content-Disposition: attachment; filename=\"certificate.p12\"\n"
	"Content-Transfer-Encoding: base64\n"
	"\n"
	"cGxhY2Vob2xkZXI6IHJlcGxhY2VkIGJ5IHRoZSBQS0NTIzEyIGZpbGUK\n"
	"\n"
	"--=-sealgate-pfx-0--\n";

#define DLP_RCPTS_RULES \
	"Recipients:\n" \
	"<#list recipients as r>\n" \
	"  ${r}\n" \
	"</#list>\n" \
	"\n" \
	"Rules that matched:\n" \
	"<#list rules as r>\n" \
	"  ${r}\n" \
	"</#list>\n"

static const char t_dlp_warning[] = H_NOTIFY("DLP warning: ${subject}")
	"Your message was delivered, but it matched data leak prevention rules.\n"
	"Please check that it was meant to be sent.\n"
	"\n"
	DLP_RCPTS_RULES FOOT_ORIG;

static const char t_dlp_quarantine[] = H_NOTIFY("DLP quarantine: ${subject}")
	"Your message matched data leak prevention rules and was put in\n"
	"quarantine (ID ${quarantine_id}). It has not been delivered.\n"
	"<#if release_url>\n"
	"\n"
	"To release or delete it, go to:\n"
	"\n"
	"  ${release_url}\n"
	"</#if>\n"
	"\n"
	"It will be deleted after ${expire_days} days if nobody releases it.\n"
	"\n"
	DLP_RCPTS_RULES FOOT_ORIG;

static const char t_dlp_block[] = H_NOTIFY("DLP block: ${subject}")
	"Your message matched data leak prevention rules and was blocked.\n"
	"It has not been delivered.\n"
	"\n"
	DLP_RCPTS_RULES FOOT_ORIG;

static const char t_dlp_error[] = H_NOTIFY("DLP error: ${subject}")
	"Your message could not be checked by data leak prevention and was\n"
	"not delivered.\n"
	"\n"
	"Reason: ${reason}\n"
	"\n"
	"Recipients:\n"
	"<#list recipients as r>\n"
	"  ${r}\n"
	"</#list>\n"
	FOOT_ORIG;

#define DLP_RCPTS \
	"Recipients:\n" \
	"<#list recipients as r>\n" \
	"  ${r}\n" \
	"</#list>\n"

static const char t_dlp_release[] = H_NOTIFY("DLP release: ${subject}")
	"Your quarantined message (ID ${quarantine_id}) was released by\n"
	"<#if actor>${actor}<#else>an administrator</#if> and has been delivered.\n"
	"\n"
	DLP_RCPTS FOOT_ORIG;

static const char t_dlp_delete[] = H_NOTIFY("DLP delete: ${subject}")
	"Your quarantined message (ID ${quarantine_id}) was deleted by\n"
	"<#if actor>${actor}<#else>an administrator</#if>. It was not delivered.\n"
	"\n"
	DLP_RCPTS FOOT_ORIG;

static const char t_dlp_expire[] = H_NOTIFY("DLP quarantine expired: ${subject}")
	"Your quarantined message (ID ${quarantine_id}) was not released within\n"
	"${expire_days} days and has been deleted. It was not delivered.\n"
	"\n"
	DLP_RCPTS FOOT_ORIG;

/* -------------------------------------------------------------- catalogue */

#define MAIL TEMPLATE_KIND_MAIL
#define SMS TEMPLATE_KIND_SMS
#define GLOBAL TEMPLATE_F_GLOBAL_ONLY

static const struct template_def defs[TEMPLATE__COUNT] = {
	[TEMPLATE_ENCRYPTED_PDF] = {"encrypted_pdf", "Encrypted PDF", MAIL, 0,
		v_pdf, N(v_pdf), t_pdf, "application/pdf"},
	[TEMPLATE_ENCRYPTED_PDF_SMS] = {"encrypted_pdf_sms", "Encrypted PDF via SMS", MAIL, 0,
		v_pdf_sms, N(v_pdf_sms), t_pdf_sms, "application/pdf"},
	[TEMPLATE_ENCRYPTED_PDF_OTP] = {"encrypted_pdf_otp", "Encrypted PDF OTP", MAIL, 0,
		v_pdf_otp, N(v_pdf_otp), t_pdf_otp, "application/pdf"},
	[TEMPLATE_ENCRYPTED_PDF_OTP_INVITE] = {"encrypted_pdf_otp_invite",
		"Encrypted PDF OTP invite", MAIL, 0, v_pdf_otp_invite, N(v_pdf_otp_invite),
		t_pdf_otp_invite, "application/pdf"},
	[TEMPLATE_ENCRYPTION_FAILED] = {"encryption_failed", "Encryption failed notification",
		MAIL, 0, v_failed, N(v_failed), t_failed, NULL},
	[TEMPLATE_ENCRYPTION_NOTIFICATION] = {"encryption_notification",
		"Encryption notification", MAIL, 0, v_encrypted, N(v_encrypted), t_encrypted,
		NULL},
	[TEMPLATE_PASSWORDS_NOTIFICATION] = {"passwords_notification",
		"Passwords notification", MAIL, 0, v_passwords, N(v_passwords), t_passwords, NULL},
	[TEMPLATE_SMS_PASSWORD] = {"sms_password", "SMS with password", SMS, 0,
		v_sms_password, N(v_sms_password), t_sms_password, NULL},
	[TEMPLATE_SMS_PFX_PASSWORD] = {"sms_pfx_password", "SMS PFX password", SMS, GLOBAL,
		v_sms_pfx, N(v_sms_pfx), t_sms_pfx, NULL},
	[TEMPLATE_PFX_EMAIL] = {"pfx_email", "PFX email", MAIL, GLOBAL,
		v_pfx_email, N(v_pfx_email), t_pfx_email, "application/x-pkcs12"},
	[TEMPLATE_DLP_WARNING] = {"dlp_warning", "DLP warning", MAIL, 0,
		v_dlp, N(v_dlp), t_dlp_warning, NULL},
	[TEMPLATE_DLP_QUARANTINE] = {"dlp_quarantine", "DLP quarantine", MAIL, 0,
		v_dlp_quarantine, N(v_dlp_quarantine), t_dlp_quarantine, NULL},
	[TEMPLATE_DLP_BLOCK] = {"dlp_block", "DLP block", MAIL, 0,
		v_dlp, N(v_dlp), t_dlp_block, NULL},
	[TEMPLATE_DLP_ERROR] = {"dlp_error", "DLP error", MAIL, 0,
		v_dlp_error, N(v_dlp_error), t_dlp_error, NULL},
	[TEMPLATE_DLP_RELEASE_NOTIFICATION] = {"dlp_release_notification",
		"DLP release notification", MAIL, 0, v_dlp_done, N(v_dlp_done), t_dlp_release,
		NULL},
	[TEMPLATE_DLP_DELETE_NOTIFICATION] = {"dlp_delete_notification",
		"DLP delete notification", MAIL, 0, v_dlp_done, N(v_dlp_done), t_dlp_delete, NULL},
	[TEMPLATE_DLP_EXPIRE_NOTIFICATION] = {"dlp_expire_notification",
		"DLP expire notification", MAIL, 0, v_dlp_expire, N(v_dlp_expire), t_dlp_expire,
		NULL},
};

const struct template_def *template_def(enum template_id id)
{
	if ((unsigned)id >= TEMPLATE__COUNT)
		return NULL;
	return &defs[id];
}

int template_find(const char *name, enum template_id *id_r)
{
	size_t i;

	for (i = 0; i < TEMPLATE__COUNT; i++) {
		if (strcmp(defs[i].name, name) == 0) {
			*id_r = (enum template_id)i;
			return 1;
		}
	}
	return 0;
}
