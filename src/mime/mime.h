/*
 * mime.h - thin helpers over GMime 3: parse a message from a byte range of an
 * fd (streaming), headers, addresses and the originator (F-POL-3), a bounded
 * walk over the parts, and streaming serialisation.
 *
 * The ONLY public header that may expose GMime/GLib types (STYLE §1). GMime
 * must be initialised once by the program (g_mime_init() in main(), never in
 * this module). Objects are not shared between threads; different messages
 * may be handled by different threads at the same time.
 *
 * Hostile input: every function here accepts arbitrary bytes. Malformed MIME
 * never fails a parse (GMime is tolerant; a message without any header
 * section becomes one text/plain part holding the whole input). Only I/O
 * errors and bad arguments fail.
 */
#ifndef SG_MIME_H
#define SG_MIME_H

#include <gmime/gmime.h>

#include "lib/lib.h"

/* Bounds of mime_msg_walk (STYLE §13: no unbounded recursion over MIME). */
#define MIME_MAX_DEPTH 32    /* nesting levels below the top-level part */
#define MIME_MAX_PARTS 1000  /* parts visited in one walk */
/* More lines starting with "--" (possible boundaries) than this make a
 * parsed message opaque (see mime_msg_is_opaque): GMime would build every
 * part in memory. */
#define MIME_MAX_BOUNDARY_LINES (4 * MIME_MAX_PARTS)

struct mime_msg;

/* ----------------------------------------------------------------- parse */

/*
 * mime_msg_parse_fd - parse the message stored in bytes [offset, offset+len)
 * of fd (e.g. spool_msg_body_fd). fd is dup()ed: the caller keeps its fd and
 * may close it. The message is streamed: part contents stay references into
 * the file, so memory does not grow with the body size. The dup shares the
 * file offset with fd: while the mime_msg lives, read fd only with pread().
 * Returns a new message (free with mime_msg_free) or NULL with SG_E_IO (the
 * range lies beyond the end of the file, or a read failed) or SG_E_INVAL.
 */
struct mime_msg *mime_msg_parse_fd(int fd, uint64_t offset, uint64_t len,
	struct sg_error *err);

/*
 * mime_msg_open_fd - as mime_msg_parse_fd, but GMime parses the message only
 * when something first needs its fields or structure (any function below
 * but mime_msg_source_size, mime_msg_is_modified, mime_msg_set_modified and
 * writing it unchanged). An output that is only written out as it is (an
 * S/MIME result) is then copied byte for byte without ever being parsed. A
 * read error during that later parse leaves an empty message that cannot be
 * walked or rewritten (SG_E_LIMIT, as an opaque one).
 */
struct mime_msg *mime_msg_open_fd(int fd, uint64_t offset, uint64_t len,
	struct sg_error *err);

/*
 * mime_msg_new_gmime - wrap a message built in memory (a notification, an
 * encrypted output). Takes a new reference to gm. The message has no source
 * bytes, so it always counts as modified (it is serialised by GMime).
 */
struct mime_msg *mime_msg_new_gmime(GMimeMessage *gm);

/* mime_msg_free - release the message, its GMime objects and its fd; NULL ok. */
void mime_msg_free(struct mime_msg **mp);

/* mime_msg_get0_gmime - the GMime message (borrowed; never NULL). Call
 * mime_msg_set_modified after changing it directly. */
GMimeMessage *mime_msg_get0_gmime(struct mime_msg *m);

/* mime_msg_source_size - length of the source byte range (0 if generated). */
uint64_t mime_msg_source_size(const struct mime_msg *m);

/* mime_msg_has_headers - false when the input had no header section and was
 * wrapped as one text/plain part (see above). */
bool mime_msg_has_headers(const struct mime_msg *m);

/*
 * mime_msg_is_opaque - the input had more than MIME_MAX_BOUNDARY_LINES
 * possible boundaries: only its header section was parsed (headers and the
 * originator work), the body was not. Such a message passes through
 * unchanged (byte copy), but mime_msg_walk fails with SG_E_LIMIT and writing
 * it after a change fails with SG_E_LIMIT (it cannot be rebuilt), so stages
 * that need its structure fail closed.
 */
bool mime_msg_is_opaque(const struct mime_msg *m);

/*
 * mime_msg_reparse - a new, independent, unmodified message parsed again from
 * m's source byte range (m's changes are not carried over): one output per
 * recipient group can then be changed on its own while the others stay
 * byte-identical. The source fd is dup()ed again. NULL with SG_E_INVAL for a
 * generated message (no source), or as mime_msg_parse_fd.
 */
struct mime_msg *mime_msg_reparse(const struct mime_msg *m, struct sg_error *err);

/* mime_msg_is_calendar - SPEC D-3: the top-level part is text/calendar, or a
 * top-level multipart/alternative has a text/calendar part (as Outlook
 * sends invitations). */
bool mime_msg_is_calendar(struct mime_msg *m);

/* mime_msg_is_modified - true once anything changed the message: it will then
 * be re-serialised by GMime instead of copied byte for byte. */
bool mime_msg_is_modified(const struct mime_msg *m);
void mime_msg_set_modified(struct mime_msg *m);

/* --------------------------------------------------------------- headers */

/*
 * Top-level header fields of the message (not those of its parts). Names
 * compare case-insensitively. Returned strings are borrowed and valid until
 * the header list changes.
 */

/* mime_msg_header_get - decoded (RFC 2047, UTF-8) value of the first field
 * called name, or NULL when absent. */
const char *mime_msg_header_get(struct mime_msg *m, const char *name);
/* mime_msg_header_get_raw - the raw value (as in the input, folded, may hold
 * any byte but NUL), or NULL when absent. */
const char *mime_msg_header_get_raw(struct mime_msg *m, const char *name);
/* mime_msg_header_get_nth - decoded (RFC 2047, unfolded, UTF-8) value of the
 * idx-th (from 0) field called name, or NULL when there are fewer. */
const char *mime_msg_header_get_nth(struct mime_msg *m, const char *name, size_t idx);
/* mime_msg_header_count - number of fields called name. */
unsigned mime_msg_header_count(struct mime_msg *m, const char *name);
/*
 * mime_msg_header_set - set the first field called name to value (UTF-8,
 * encoded as RFC 2047 when needed) and remove the others; append it when
 * absent. SG_E_INVAL for a bad field name (empty, not printable ASCII, ':')
 * or a value with CR/LF. 0 or -1.
 */
int mime_msg_header_set(struct mime_msg *m, const char *name, const char *value,
	struct sg_error *err);
/* mime_msg_header_append - add a field at the end (same checks). 0 or -1. */
int mime_msg_header_append(struct mime_msg *m, const char *name, const char *value,
	struct sg_error *err);
/* mime_msg_header_remove - remove every field called name; returns how many. */
unsigned mime_msg_header_remove(struct mime_msg *m, const char *name);
/* mime_msg_header_remove_prefix - remove every field whose name starts with
 * prefix (case-insensitive), e.g. "X-Sealgate-"; returns how many. */
unsigned mime_msg_header_remove_prefix(struct mime_msg *m, const char *prefix);

/* ------------------------------------------------------------- addresses */

enum mime_origin {
	MIME_ORIGIN_NONE,      /* no From, no Sender, null envelope sender */
	MIME_ORIGIN_FROM,
	MIME_ORIGIN_SENDER,
	MIME_ORIGIN_ENVELOPE,
};

const char *mime_origin_name(enum mime_origin o);

/*
 * mime_addr_first - the addr-spec of the first usable mailbox in a raw
 * address-list header value (groups are descended into; display names and
 * encoded-words are ignored; 8-bit/UTF-8 tolerated). "Usable" means
 * sg_addr_is_valid() and valid UTF-8. The domain is returned in its ASCII
 * (IDNA) form, so it compares with envelope addresses. raw may be NULL.
 * Returns 1 and *addr_r (caller frees), or 0 when there is none.
 */
int mime_addr_first(const char *raw, char **addr_r);

/*
 * mime_msg_originator - F-POL-3: the From header's address; if there is none
 * (absent or no usable mailbox; of several From fields the first counts) the
 * Sender header's; else the envelope sender env_sender (NULL or "" = none).
 * *addr_r is always set (caller frees): "" with MIME_ORIGIN_NONE.
 */
enum mime_origin mime_msg_originator(struct mime_msg *m, const char *env_sender,
	char **addr_r);

/* ----------------------------------------------------------------- parts */

struct mime_part_ref {
	GMimeObject *part;    /* borrowed: a GMimePart, GMimeMultipart or
	                         GMimeMessagePart */
	GMimeObject *parent;  /* container, NULL for the top-level part */
	unsigned depth;       /* 0 = the message's top-level part */
	unsigned index;       /* 0-based pre-order position in the walk */
};

/* Visit one part: 0 continue, 1 stop the walk (it returns 0), -1 error
 * (err set; the walk returns -1). */
typedef int mime_walk_fn(const struct mime_part_ref *ref, void *arg,
	struct sg_error *err);

/*
 * mime_msg_walk - depth-first, pre-order over every part, entering multiparts
 * and message/rfc822 parts. Never deeper than MIME_MAX_DEPTH and never more
 * than MIME_MAX_PARTS visits: reaching either bound returns -1 with
 * SG_E_LIMIT (after visiting the parts before it). 0 when complete.
 */
int mime_msg_walk(struct mime_msg *m, mime_walk_fn *fn, void *arg,
	struct sg_error *err);

/* ---------------------------------------------------------- serialising */

/* Receives the serialised message in pieces: 0 ok, -1 error (err set). */
typedef int mime_write_fn(void *arg, const void *data, size_t len,
	struct sg_error *err);

/*
 * mime_msg_write - stream the message to fn. An unmodified parsed message is
 * copied byte for byte from its source range; otherwise GMime serialises it
 * with the line ending style of the input (CRLF if its first line ended in
 * CRLF). max > 0 caps the output: one byte more fails with SG_E_LIMIT.
 * *size_r (may be NULL) gets the bytes written. 0 or -1 (SG_E_IO on a read
 * error or a source that became shorter, or fn's error).
 */
int mime_msg_write(struct mime_msg *m, uint64_t max, mime_write_fn *fn, void *arg,
	uint64_t *size_r, struct sg_error *err);

/* mime_msg_write_fd - mime_msg_write into fd at its current offset. */
int mime_msg_write_fd(struct mime_msg *m, int fd, uint64_t max, uint64_t *size_r,
	struct sg_error *err);

#endif
