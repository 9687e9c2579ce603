/*
 * smime_int.h - helpers shared inside src/smime: the split of a message into
 * its outer header fields and its top-level MIME entity (GMime), CRLF
 * canonicalisation, BIO/sg_buf glue.
 */
#ifndef SG_SMIME_INT_H
#define SG_SMIME_INT_H

#include "smime/smime.h"

/* A message split at its top-level entity. Both buffers are CRLF. */
struct smime_split {
	struct sg_buf outer;     /* header fields except Content-* and MIME-Version */
	struct sg_buf entity;    /* Content-* fields, CRLF, body */
	size_t entity_body;      /* offset of the body in entity */
	struct sg_buf ctype;     /* the raw Content-Type field ("Content-Type:...CRLF"), may be empty */
	char *media;             /* "multipart/signed", lower case ("text/plain" if none) */
	char *protocol;          /* Content-Type parameters, lower case, or NULL */
	char *smime_type;
	char *name;
	char *boundary;          /* as is (case kept), or NULL */
};

/* smime_split_msg - split msg; buffers capped at max. 0 / -1. */
int smime_split_msg(const void *msg, size_t len, size_t max, struct smime_split *s,
	struct sg_error *err);
void smime_split_deinit(struct smime_split *s);

/* smime_split_kind - 0 not S/MIME, 1 multipart/signed (PKCS#7), 2 pkcs7-mime. */
int smime_split_kind(const struct smime_split *s);

/* smime_crlf_append - append data to b with every bare LF turned into CRLF. */
int smime_crlf_append(struct sg_buf *b, const void *data, size_t len,
	struct sg_error *err);

/* smime_bio_append - append everything readable from bio to b. 0 / -1. */
int smime_bio_append(BIO *bio, struct sg_buf *b, struct sg_error *err);

/* smime_split_signed_ctype - a Content-Type field for OpenSSL's MIME reader
 * built from the parsed values (media, protocol, boundary): the boundary is
 * written as a token when it is one (OpenSSL 3.0 fails on some quoted ones,
 * e.g. a quoted one-character boundary). 0 / -1. */
int smime_split_signed_ctype(const struct smime_split *s, struct sg_buf *b,
	struct sg_error *err);

/* smime_write_out - append outer then SMIME_write_CMS(cms, data, flags) to out. */
int smime_write_out(const struct sg_buf *outer, CMS_ContentInfo *cms, BIO *data, int flags,
	struct sg_buf *out, struct sg_error *err);

/* smime_out_rollback - cut out back to len bytes (nothing partial stays). */
void smime_out_rollback(struct sg_buf *out, size_t len);

/* smime_effective_max - m, or SMIME_DEFAULT_MAX when 0. */
size_t smime_effective_max(size_t m);

#endif
