/*
 * mime_addr.c - addresses from header fields and the message originator
 * (F-POL-3: From, else Sender, else the envelope sender).
 *
 * RFC 5322 §3.4 (address lists, groups), RFC 2047 (encoded display names),
 * RFC 6532 (UTF-8 in headers), RFC 5890 (IDNA: the domain is returned in
 * ASCII form so it compares with envelope addresses and policy domains).
 *
 * Header values are attacker-controlled: GMime's loose address parser does
 * the syntax; we only keep a result that is a plausible mailbox
 * (sg_addr_is_valid, valid UTF-8), and never look at display names, so an
 * encoded-word or quoted name that looks like an address cannot become the
 * originator.
 */
#include "mime_int.h"

#include <stdlib.h>

/* mime_addr_usable - accept only local@domain in valid UTF-8 */
static bool mime_addr_usable(const char *addr)
{
	return addr != NULL && g_utf8_validate(addr, -1, NULL) && sg_addr_is_valid(addr);
}

/* mime_addr_scan - first usable mailbox of l; groups (one level, as RFC 5322
 * has no nested groups) are searched in place. */
static int mime_addr_scan(InternetAddressList *l, unsigned depth, char **addr_r)
{
	int i, n = internet_address_list_length(l);

	for (i = 0; i < n; i++) {
		InternetAddress *a = internet_address_list_get_address(l, i);

		if (INTERNET_ADDRESS_IS_GROUP(a)) {
			InternetAddressList *members;

			if (depth > 0)
				continue;
			members = internet_address_group_get_members(INTERNET_ADDRESS_GROUP(a));
			if (members != NULL && mime_addr_scan(members, depth + 1, addr_r) == 1)
				return 1;
		} else if (INTERNET_ADDRESS_IS_MAILBOX(a)) {
			const char *s = internet_address_mailbox_get_idn_addr(
				INTERNET_ADDRESS_MAILBOX(a));

			if (mime_addr_usable(s)) {
				*addr_r = sg_xstrdup(s);
				return 1;
			}
		}
	}
	return 0;
}

int mime_addr_first(const char *raw, char **addr_r)
{
	InternetAddressList *l;
	int rc = 0;

	*addr_r = NULL;
	if (raw == NULL)
		return 0;
	l = internet_address_list_parse(NULL, raw);
	if (l == NULL)
		return 0;
	rc = mime_addr_scan(l, 0, addr_r);
	g_object_unref(l);
	return rc;
}

const char *mime_origin_name(enum mime_origin o)
{
	switch (o) {
	case MIME_ORIGIN_FROM:
		return "from";
	case MIME_ORIGIN_SENDER:
		return "sender";
	case MIME_ORIGIN_ENVELOPE:
		return "envelope";
	case MIME_ORIGIN_NONE:
		break;
	}
	return "none";
}

/* mime_msg_originator - From, then Sender, then the envelope sender */
enum mime_origin mime_msg_originator(struct mime_msg *m, const char *env_sender,
	char **addr_r)
{
	if (mime_addr_first(mime_msg_header_get_raw(m, "From"), addr_r) == 1)
		return MIME_ORIGIN_FROM;
	if (mime_addr_first(mime_msg_header_get_raw(m, "Sender"), addr_r) == 1)
		return MIME_ORIGIN_SENDER;
	if (env_sender != NULL && env_sender[0] != '\0') {
		*addr_r = sg_xstrdup(env_sender);
		return MIME_ORIGIN_ENVELOPE;
	}
	*addr_r = sg_xstrdup("");
	return MIME_ORIGIN_NONE;
}
