/*
 * fuzz_policy_trigger.c - libFuzzer target for the policy's pattern parsers:
 * the HEADER[:REGEX] header trigger, the "/REGEX/ VALUE" subject filter, the
 * subject trigger (keyword and regex, with removal) and the phone number
 * after the trigger. Input: "SPEC\nSUBJECT"; the first byte also selects the
 * trigger flags.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

static const char *fuzz_hdr(void *arg, const char *name, size_t idx)
{
	(void)name;
	return idx < 2 ? (const char *)arg : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sg_error err;
	struct policy_header_trigger *t;
	struct policy_subject_filter *f;
	char *buf, *nl, *subject, *out = NULL;
	char phone[24];
	size_t tail = 0;
	unsigned flags;

	if (size > 4096)
		return 0;
	buf = malloc(size + 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	flags = size > 0 ? (unsigned)data[0] & 3u : 0;
	nl = strchr(buf, '\n');
	subject = nl != NULL ? nl + 1 : buf;
	if (nl != NULL)
		*nl = '\0';
	t = policy_header_trigger_parse(buf, &err);
	if (t != NULL)
		(void)policy_header_trigger_match(t, fuzz_hdr, subject, &err);
	policy_header_trigger_free(&t);
	f = policy_subject_filter_parse(buf, &err);
	if (f != NULL && policy_subject_filter_apply(f, subject, &out, &err) == 1)
		free(out);
	out = NULL;
	policy_subject_filter_free(&f);
	if (*buf != '\0' && policy_subject_trigger(subject, buf, flags, &out, &tail,
		&err) == 1) {
		(void)policy_phone_from_tail(subject + tail, "31", phone, sizeof(phone));
		free(out);
	}
	(void)policy_phone_from_tail(subject, NULL, phone, sizeof(phone));
	free(buf);
	return 0;
}
