/*
 * delivery_int.h - structs and helpers shared inside src/delivery/ (and by its
 * unit tests and the reply-parser fuzzer). Not part of the public API.
 */
#ifndef SG_DELIVERY_INT_H
#define SG_DELIVERY_INT_H

#include <netinet/in.h>
#include <sys/socket.h>

#include "delivery/delivery.h"

/* ----------------------------------------------------------- SMTP replies */

#define DELIVERY_REPLY_LINE_MAX 4096   /* bytes per reply line, without CRLF */
#define DELIVERY_REPLY_LINES_MAX 100   /* lines per multi-line reply */

struct delivery_reply {
	int code;           /* 200..599 once the first line is parsed, else 0 */
	char enh[16];       /* enhanced status "5.1.1" of the first line, or "" */
	unsigned nlines;
	bool is_complete;
	struct sg_buf text; /* each line after "NNN-"/"NNN ", '\n'-joined */
};

void delivery_reply_init(struct delivery_reply *r);
void delivery_reply_deinit(struct delivery_reply *r);
void delivery_reply_reset(struct delivery_reply *r);
/*
 * delivery_reply_feed - add one reply line (without CR/LF). Returns 1 when
 * the reply is complete, 0 when more lines follow, -1 (SG_E_PARSE or
 * SG_E_LIMIT) on a malformed reply: bad code, a code that changes between
 * lines, a line over DELIVERY_REPLY_LINE_MAX or more than
 * DELIVERY_REPLY_LINES_MAX lines.
 */
int delivery_reply_feed(struct delivery_reply *r, const char *line, size_t len,
	struct sg_error *err);
/* delivery_reply_summary - "550 5.1.1 text text" (lines joined by a space,
 * escaped, truncated) into out. */
void delivery_reply_summary(const struct delivery_reply *r, char *out, size_t outsz);
/* delivery_reply_enh - the reply's enhanced status, or "<class>.0.0". */
const char *delivery_reply_enh(const struct delivery_reply *r, char *buf, size_t bufsz);

/* EHLO extensions (RFC 1869 and followers). */
enum delivery_ext {
	DELIVERY_EXT_STARTTLS = 1u << 0,
	DELIVERY_EXT_AUTH_PLAIN = 1u << 1,
	DELIVERY_EXT_AUTH_LOGIN = 1u << 2,
	DELIVERY_EXT_PIPELINING = 1u << 3,
	DELIVERY_EXT_8BITMIME = 1u << 4,
	DELIVERY_EXT_SMTPUTF8 = 1u << 5,
	DELIVERY_EXT_SIZE = 1u << 6,
	DELIVERY_EXT_DSN = 1u << 7,
};

struct delivery_caps {
	unsigned ext;       /* enum delivery_ext flags */
	uint64_t size_max;  /* SIZE limit, 0 = none given */
};

/* delivery_caps_parse - extensions from a complete 250 EHLO reply. */
void delivery_caps_parse(const struct delivery_reply *r, struct delivery_caps *caps_r);

/* ----------------------------------------------------- per-recipient results */

enum delivery_rstatus {
	DELIVERY_R_OK,
	DELIVERY_R_TEMP,
	DELIVERY_R_PERM,
};

struct delivery_result {
	enum delivery_rstatus status;
	char enh[16];       /* "2.0.0", "5.1.1", "4.4.1" */
	char relay[320];    /* "host[ip]:port" or "" (no host involved) */
	bool is_reply;      /* text is the host's SMTP reply (else a local reason) */
	bool is_expired;    /* failed because the queue lifetime ran out */
	bool is_reported;   /* a failure already bounced (DSN sent) */
	char text[512];     /* SMTP reply summary or local reason */
};

/* delivery_result_set - fill res with a local (non-SMTP) result. */
void delivery_result_set(struct delivery_result *res, enum delivery_rstatus st,
	const char *enh, const char *fmt, ...) SG_PRINTF(4, 5);

/* delivery_result_format - spool_rcpt.last_reply text for res (see
 * delivery.h), caller frees. */
char *delivery_result_format(const struct delivery_result *res);
/* delivery_result_parse - inverse of delivery_result_format; 0 ok, -1 bad. */
int delivery_result_parse(const char *s, struct delivery_result *res_r);

/* ------------------------------------------------------------ SMTP client */

struct delivery_tx {
	const char *mail_id;
	const char *sender;
	struct spool_rcpt *const *rcpts;
	size_t nrcpts;
	bool smtputf8;
	bool body_8bit;
	const char *envid;
	bool ret_hdrs;
	int body_fd;
	uint64_t body_off;
	uint64_t body_len;
};

struct delivery_session_opts {
	const char *helo;             /* EHLO/HELO argument */
	const char *server_name;      /* host name for TLS verification and SNI */
	enum mta_tls_level tls;
	const struct mta_sasl *sasl;  /* credentials or NULL */
	unsigned connect_timeout;     /* seconds */
	unsigned io_timeout;          /* seconds */
	const char *ca_file;          /* NULL = system store */
	/* connection reuse limits (see delivery_conf), 0 = defaults */
	unsigned reuse_max_age;       /* seconds since connect */
	unsigned reuse_max_tx;        /* transactions per connection, 1 = no reuse */
	unsigned reuse_idle_ms;       /* idle time since the last transaction */
};

/*
 * delivery_client_send - one SMTP transaction to the address sa: greeting,
 * EHLO/HELO, STARTTLS, AUTH, MAIL, RCPT..., DATA (streamed), then QUIT or
 * (when the session ended clean) the connection stays in the calling
 * thread's connection cache for the next transaction with the same key
 * (address, HELO name, TLS level, server name, CA file, SASL credentials),
 * which then starts at MAIL FROM. A cached connection that the server closed
 * meanwhile is replaced by a new one transparently. Fills res[0..nrcpts-1].
 * Returns 0 when every recipient has a definite result from this host, -1
 * when the host failed before MAIL FROM (connection refused, timeout, bad
 * greeting, TLS required but unavailable...): res then holds a temporary
 * failure for every recipient and the caller tries the next host.
 */
int delivery_client_send(const struct delivery_session_opts *o, const struct sockaddr *sa,
	socklen_t salen, const struct delivery_tx *tx, struct delivery_result *res);

/* delivery_dot_stuff - transform in[0..len) for DATA: "." at line start
 * doubled, bare LF -> CRLF. *state carries line-start and CR flags between
 * chunks (start with 0); out must hold 2 * len + 2 bytes. Returns bytes out.
 * delivery_dot_stuff_end - the bytes ending the body ("[CRLF].CRLF") into out
 * (>= 8 bytes). */
size_t delivery_dot_stuff(unsigned *state, const char *in, size_t len, char *out);
size_t delivery_dot_stuff_end(unsigned state, char *out);

/* ----------------------------------------------------------------- routing */

/* A next hop as configured (before DNS). */
struct delivery_hop {
	char host[256];          /* relay host, next hop, or recipient domain */
	unsigned port;
	bool use_mx;             /* host is a domain: look up its MX records */
	bool is_configured;      /* relay host / next hop (SASL applies) */
	enum mta_tls_level tls;
	const struct mta_sasl *sasl;
};

/* delivery_route_hop - next hop for recipient rcpt. 0 ok, -1 (bad address,
 * SG_E_PEER_PERM). */
int delivery_route_hop(const struct delivery_conf *conf, const struct mta_settings *mta,
	const char *rcpt, struct delivery_hop *hop_r, struct sg_error *err);
/* delivery_hop_same - two hops are the same destination (one transaction). */
bool delivery_hop_same(const struct delivery_hop *a, const struct delivery_hop *b);

/* One address to try, in order. */
struct delivery_addr {
	char host[256];
	unsigned pref;
	unsigned port;
	char ip[64];
	struct sockaddr_storage sa;
	socklen_t salen;
};

/*
 * delivery_mx_order - sort mx[0..n) by preference (equal preferences in an
 * order shuffled with seed, RFC 5321 5.1). A null MX (RFC 7505: exchange "."
 * or "") fails with SG_E_PEER_PERM "5.1.10". Returns 0 or -1.
 */
int delivery_mx_order(struct delivery_mx *mx, size_t n, uint32_t seed, struct sg_error *err);
/* delivery_addr_is_self - addr is our own SMTP listener (same port, and the
 * listening address or, when listening on a wildcard, a local interface). */
bool delivery_addr_is_self(const struct delivery_conf *conf, const struct delivery_addr *a);
/*
 * delivery_addrs_cut_self - RFC 5321 5.1: drop every address whose MX
 * preference is >= that of the first address that is ourselves. Returns the
 * remaining count; 0 with SG_E_PEER_TEMP "mail for <domain> loops back to
 * myself" when the best MX is ourselves.
 */
size_t delivery_addrs_cut_self(const struct delivery_conf *conf, struct delivery_addr *a,
	size_t n, const char *domain, struct sg_error *err);
/*
 * delivery_route_resolve - addresses to try for hop, best first (MX lookup
 * when hop->use_mx, else the host's own A/AAAA). *addrs_r is malloc'ed.
 * Returns 0, or -1 with err: SG_E_PEER_PERM (null MX, no such domain) or
 * SG_E_PEER_TEMP (DNS failure, loop). err->msg then starts with the
 * enhanced status ("5.1.10 ...").
 */
int delivery_route_resolve(const struct delivery_conf *conf, const struct delivery_hop *hop,
	struct delivery_addr **addrs_r, size_t *n_r, struct sg_error *err);
/* delivery_mx_parse_answer - MX records from a DNS answer packet. Same
 * return values as delivery_mx_lookup_fn. */
int delivery_mx_parse_answer(const unsigned char *msg, int len, struct delivery_mx **mx_r,
	size_t *n_r, struct sg_error *err);

/* --------------------------------------------------------------------- DSN */

/*
 * delivery_dsn_write - write an RFC 3464 bounce for env's recipients that
 * delivery_rcpt_needs_dsn (from their last_reply) into w; the original message is read from body_fd
 * [off, off+len): its headers, or all of it when RET is not HDRS and len <=
 * conf->bounce_full_max. now is the Date. Returns 0 or -1.
 */
int delivery_dsn_write(const struct delivery_conf *conf, const struct spool_env *env,
	int body_fd, uint64_t off, uint64_t len, int64_t now, struct spool_writer *w,
	struct sg_error *err);
/* delivery_dsn_wanted - does rcpt's failure ask for a bounce (NOTIFY)? */
bool delivery_dsn_wanted(const struct spool_rcpt *rcpt);
/* delivery_rcpt_is_reported - rcpt failed and that failure was bounced. */
bool delivery_rcpt_is_reported(const struct spool_rcpt *rcpt);
/* delivery_rcpt_needs_dsn - rcpt failed, asks for a DSN, not yet reported. */
bool delivery_rcpt_needs_dsn(const struct spool_rcpt *rcpt);

/* delivery_has_ctl - s contains bytes < 0x20 or 0x7f (unsafe in a command). */
bool delivery_has_ctl(const char *s);

#endif
