/*
 * lib_marker.c - the own-mail marker (SPEC F-FLOW-7): an HMAC-SHA256 with the
 * server secret over the generated message's mail ID and Message-ID, written
 * as the X-Sealgate-Marker header (format in lib.h). One implementation for
 * the pipeline (notifications, src/mpa) and the delivery agent (bounces,
 * src/delivery), which has no store access and gets the secret from its
 * configuration.
 *
 * What it proves: the gateway made a message with this Message-ID. It does
 * not cover the body, so a party that received a genuine generated message
 * can re-send its marker and Message-ID with another body. Generated mail
 * goes to internal originators only (D-4), and the pipeline accepts a
 * marker only on mail with the null envelope sender, which a mail client
 * does not send; binding a canonical body hash would close the gap.
 *
 * Pure functions; any thread.
 */
#include "lib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define MARKER_LABEL "sealgate-marker-1"
#define MARKER_MSGID_MAX 998
#define MARKER_MAC_B64 44 /* base64 of 32 bytes, with padding */

/* marker_msgid - msgid without blanks and enclosing <> into out; length or
 * 0 when empty or too long. */
static size_t marker_msgid(const char *msgid, char *out, size_t outsz)
{
	size_t n = 0;
	const char *p;

	for (p = msgid; *p != '\0'; p++) {
		if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			continue;
		if (n + 1 >= outsz)
			return 0;
		out[n++] = *p;
	}
	out[n] = '\0';
	if (n >= 2 && out[0] == '<' && out[n - 1] == '>') {
		memmove(out, out + 1, n - 2);
		n -= 2;
		out[n] = '\0';
	}
	return n;
}

/* marker_mac - base64 MAC into b64 (MARKER_MAC_B64 + 1 bytes); 0 or -1. */
static int marker_mac(const char *secret, const char *mail_id, const char *msgid,
	char *b64)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	char nid[MARKER_MSGID_MAX + 1];
	size_t idlen = strlen(mail_id), nlen = marker_msgid(msgid, nid, sizeof(nid));
	size_t lablen = sizeof(MARKER_LABEL);     /* with its NUL */
	size_t dlen = lablen + idlen + 1 + nlen;
	unsigned char *data;
	int rc = -1;

	if (nlen == 0)
		return -1;
	data = sg_xmalloc(dlen);
	memcpy(data, MARKER_LABEL, lablen);
	memcpy(data + lablen, mail_id, idlen + 1);
	memcpy(data + lablen + idlen + 1, nid, nlen);
	if (HMAC(EVP_sha256(), secret, (int)strlen(secret), data, dlen, mac, &maclen) != NULL
	    && maclen == 32 && EVP_EncodeBlock((unsigned char *)b64, mac, 32) ==
	    MARKER_MAC_B64)
		rc = 0;
	OPENSSL_cleanse(mac, sizeof(mac));
	free(data);
	return rc;
}

int sg_marker_make(const char *secret, const char *mail_id, const char *msgid, char *out,
	size_t outsz, struct sg_error *err)
{
	char b64[MARKER_MAC_B64 + 1];

	if (secret == NULL || secret[0] == '\0') {
		sg_error_set(err, SG_E_INVAL, "marker: no server secret");
		return -1;
	}
	if (mail_id == NULL || !sg_mail_id_is_valid(mail_id)) {
		sg_error_set(err, SG_E_INVAL, "marker: invalid mail ID");
		return -1;
	}
	if (msgid == NULL || marker_mac(secret, mail_id, msgid, b64) < 0) {
		sg_error_set(err, SG_E_INVAL, "marker: empty or overlong Message-ID");
		return -1;
	}
	if ((size_t)snprintf(out, outsz, "%s; %s", mail_id, b64) >= outsz) {
		sg_error_set(err, SG_E_INVAL, "marker: output buffer too small");
		return -1;
	}
	return 0;
}

bool sg_marker_verify(const char *secret, const char *value, const char *msgid)
{
	char id[SG_MAIL_ID_LEN + 1], want[MARKER_MAC_B64 + 1];
	const char *p, *mac;
	size_t n;

	if (secret == NULL || secret[0] == '\0' || value == NULL || msgid == NULL)
		return false;
	p = value + strspn(value, " \t\r\n");
	if (strlen(p) < SG_MAIL_ID_LEN || p[SG_MAIL_ID_LEN] != ';')
		return false;
	memcpy(id, p, SG_MAIL_ID_LEN);
	id[SG_MAIL_ID_LEN] = '\0';
	if (!sg_mail_id_is_valid(id))
		return false;
	mac = p + SG_MAIL_ID_LEN + 1;
	mac += strspn(mac, " \t\r\n");
	n = strcspn(mac, " \t\r\n");
	if (n != MARKER_MAC_B64 || mac[n + strspn(mac + n, " \t\r\n")] != '\0')
		return false;
	if (marker_mac(secret, id, msgid, want) < 0)
		return false;
	return CRYPTO_memcmp(want, mac, MARKER_MAC_B64) == 0;
}
