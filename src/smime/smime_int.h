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

/* smime_split_head - as smime_split_msg over the first hlen bytes of a message
 * of len bytes (hdr holds at least its whole header section): entity gets the
 * entity's fields and the empty line, NOT the body, which starts at *body_r
 * in the message. 0 / -1. */
int smime_split_head(const void *hdr, size_t hlen, uint64_t len, size_t max,
	struct smime_split *s, uint64_t *body_r, struct sg_error *err);

/* ------------------------------------------------ streaming (smime_stream.c) */

/* smime_tmp_fd - an anonymous temporary file (memfd, close-on-exec). */
int smime_tmp_fd(struct sg_error *err);

/* smime_fd_write - write all of data[0..len) to fd. 0 / -1 (SG_E_IO). */
int smime_fd_write(int fd, const void *data, size_t len, struct sg_error *err);

/* smime_fd_pread - up to n bytes at off; the count (0 at the end), or -1
 * with err (EINTR retried). */
ssize_t smime_fd_pread(int fd, void *buf, size_t n, uint64_t off, struct sg_error *err);

/* smime_split_fd - smime_split_head over bytes [0, len) of fd (pread): only
 * the header section is read, capped at max (SG_E_LIMIT). 0 / -1. */
int smime_split_fd(int fd, uint64_t len, size_t max, struct smime_split *s,
	uint64_t *body_r, struct sg_error *err);

/* smime_src_open - a read-only BIO yielding prefix (borrowed: it must
 * outlive the BIO) as it is and then bytes [from, to) of fd in canonical
 * form (bare LF -> CRLF; a CR before an LF in the source keeps it as one
 * CRLF), read with pread in bounded pieces. Producing more than max bytes or
 * a read error makes BIO_read fail; smime_src_check tells which (0 when
 * neither happened, else -1 with SG_E_LIMIT / SG_E_IO). NULL with err. */
BIO *smime_src_open(int fd, uint64_t from, uint64_t to, const struct sg_buf *prefix,
	uint64_t max, struct sg_error *err);
int smime_src_check(BIO *b, struct sg_error *err);

/* A canonicalising writer into a new temporary file: prefix as it is, then
 * everything put with bare LF -> CRLF (a CR at the end of one put and an LF
 * at the start of the next make one CRLF); md (may be NULL) is updated with
 * every byte written; more than max bytes is SG_E_LIMIT. close returns the
 * fd (offset 0; the caller closes it) and its size, or -1; both close and
 * free release the writer. */
struct smime_canon;
struct smime_canon *smime_canon_open(const struct sg_buf *prefix, EVP_MD_CTX *md,
	uint64_t max, struct sg_error *err);
int smime_canon_put(struct smime_canon *o, const void *data, size_t len,
	struct sg_error *err);
/* smime_canon_put_fd - put bytes [from, to) of fd (pread, bounded pieces). */
int smime_canon_put_fd(struct smime_canon *o, int fd, uint64_t from, uint64_t to,
	struct sg_error *err);
int smime_canon_close(struct smime_canon **op, uint64_t *len_r, struct sg_error *err);
void smime_canon_free(struct smime_canon **op);

/* smime_fd_copy - copy bytes [0, len) of from_fd (pread) to to_fd's offset. */
int smime_fd_copy(int from_fd, uint64_t len, int to_fd, struct sg_error *err);

/* smime_out_open - a buffered BIO writing to fd at its offset (the fd stays
 * open); NULL with err. smime_out_close flushes (0 / -1) and frees it. */
BIO *smime_out_open(int fd, struct sg_error *err);
int smime_out_close(BIO **bp, struct sg_error *err);


/* smime_fd_size - bytes written to fd since offset start (its current offset
 * minus start), or -1 with err. */
int64_t smime_fd_since(int fd, uint64_t start, struct sg_error *err);

/* smime_fd_to_buf - append bytes [0, len) of fd to out. 0 / -1. */
int smime_fd_to_buf(int fd, uint64_t len, struct sg_buf *out, struct sg_error *err);

/* smime_out_finish - smime_out_close, then *written_r = the bytes written to
 * out_fd since offset start, which must not exceed max (SG_E_LIMIT). */
int smime_out_finish(BIO **bp, int out_fd, uint64_t start, size_t max,
	int64_t *written_r, struct sg_error *err);

/* smime_buf_via_fds - the in-memory form of an operation over files: msg
 * into a temporary file, op(that file, len, a second one, &n, arg), the n
 * bytes of the result appended to out (nothing partial stays on failure);
 * what names the caller in the bad-arguments error. 0 / -1. */
typedef int smime_fd_op(int in_fd, uint64_t len, int out_fd, uint64_t *n_r,
	const void *arg, struct sg_error *err);
int smime_buf_via_fds(const void *msg, size_t len, struct sg_buf *out, const char *what,
	smime_fd_op *op, const void *arg, struct sg_error *err);

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

/* smime_out_rollback - cut out back to len bytes (nothing partial stays). */
void smime_out_rollback(struct sg_buf *out, size_t len);

/* A case-insensitive name for an enum value (algorithm tables). */
struct smime_name {
	const char *name;
	int value;
};
/* smime_name_find - *v_r = the value of s in tab[0..n); 0, or -1 if absent
 * (s may be NULL). */
int smime_name_find(const struct smime_name *tab, size_t n, const char *s, int *v_r);

/* smime_effective_max - m, or SMIME_DEFAULT_MAX when 0. */
size_t smime_effective_max(size_t m);

#endif
