/*
 * spool_int.h - structures and helpers shared by the files of src/spool/.
 * Not for other modules (they include spool.h only).
 *
 * Message file format, version 1 (all integers big-endian):
 *
 *   magic    "SGSPOOL" 0x01                                  8 bytes
 *   BODY     'B' u64 length, then the body bytes             9 + length
 *   envelope records, each u8 type + u32 length + data (<= SPOOL_REC_MAX):
 *            'I' id, 'S' sender, 'R' recipient, 'K' kind, 'A' client
 *            address, 'H' client HELO, 'P' parent id, 'E' DSN ENVID,
 *            'F' flags, 'T' arrival
 *   END      'Z' u32 40, u64 body length, SHA-256 of the body   45 bytes
 *   EOF      (nothing may follow the trailer)
 *
 * The body comes first because the writer's envelope may still change
 * until commit (spool_writer_env): the body streams to disk as it arrives
 * with a placeholder length that commit patches with pwrite(), then the
 * envelope and the trailer are appended. Memory never grows with the body.
 *
 * State file state/<id>, version 1: magic "SGSTATE" 0x01 then records
 * 'I' id, 'N' attempts (u32), 'X' next attempt (i64), 'L' last error,
 * 'Q' queue the message was held from (u8), 'r' recipient state (u32 index,
 * u8 status, last reply). Written with sg_file_write_atomic.
 */
#ifndef SG_SPOOL_INT_H
#define SG_SPOOL_INT_H

#include "spool.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <sys/stat.h>

#define SPOOL_MAGIC "SGSPOOL\x01"
#define SPOOL_MAGIC_LEN 8
#define SPOOL_STATE_MAGIC "SGSTATE\x01"
#define SPOOL_BODY_HDR_LEN 9                     /* 'B' + u64 */
#define SPOOL_BODY_OFFSET (SPOOL_MAGIC_LEN + SPOOL_BODY_HDR_LEN)
#define SPOOL_REC_HDR_LEN 5                      /* type + u32 */
#define SPOOL_END_LEN (SPOOL_REC_HDR_LEN + 8 + 32)
#define SPOOL_BODY_PLACEHOLDER UINT64_MAX

#define SPOOL_FIELD_MAX SPOOL_MAX_FIELD
#define SPOOL_REC_MAX (4 + 2 * SPOOL_FIELD_MAX)
#define SPOOL_RCPTS_MAX SPOOL_MAX_RCPTS
#define SPOOL_STATE_MAX (16u * 1024 * 1024)
#define SPOOL_WBUF_SIZE 65536
#define SPOOL_BATCH_MAX 10000    /* outputs per batch */

enum spool_rec {
	SPOOL_REC_BODY = 'B',
	SPOOL_REC_ID = 'I',
	SPOOL_REC_SENDER = 'S',
	SPOOL_REC_RCPT = 'R',
	SPOOL_REC_KIND = 'K',
	SPOOL_REC_CLIENT_ADDR = 'A',
	SPOOL_REC_CLIENT_HELO = 'H',
	SPOOL_REC_PARENT = 'P',
	SPOOL_REC_ENVID = 'E',
	SPOOL_REC_FLAGS = 'F',
	SPOOL_REC_ARRIVAL = 'T',
	SPOOL_REC_END = 'Z',
	/* state file */
	SPOOL_REC_ATTEMPTS = 'N',
	SPOOL_REC_NEXT = 'X',
	SPOOL_REC_LAST_ERROR = 'L',
	SPOOL_REC_HELD_FROM = 'Q',
	SPOOL_REC_RCPT_STATE = 'r',
};

enum spool_flag_bits {
	SPOOL_FL_RET_HDRS = 1u << 0,
	SPOOL_FL_SMTPUTF8 = 1u << 1,
	SPOOL_FL_8BIT = 1u << 2,
	SPOOL_FL_BATCH_OUT = 1u << 3,  /* written by a batch: parent = its input */
};
#define SPOOL_FL_ALL 15u

/* Extra "directory" names next to the queues. */
#define SPOOL_DIR_TMP "tmp"
#define SPOOL_DIR_STATE "state"
#define SPOOL_DIR_BATCH "batch"
#define SPOOL_DIR_FREE "free"
#define SPOOL_DIR_DONE "done"

struct spool {
	char *dir;     /* immutable after spool_open: the struct is shared */
	/* files whose body hash this process wrote or checked (spool_file.c),
	 * under ver_mu */
	pthread_mutex_t ver_mu;
	struct spool_verified *ver;         /* SPOOL_VERIFIED_SLOTS */
	/* recycled message files in free/ (spool_pool.c), under pool_mu */
	pthread_mutex_t pool_mu;
	char (*pool)[SG_MAIL_ID_LEN + 1];   /* NULL: not pooling */
	size_t pool_n;
};

/* A message file known to match its trailer's SHA-256: this process wrote
 * it (or checked it) and it is unchanged since (same inode, size and
 * modification time). */
#define SPOOL_VERIFIED_SLOTS 4096
struct spool_verified {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

struct spool_writer {
	struct spool *sp;
	struct spool_env env;
	char tmp_path[4096];
	int fd;
	uint64_t max_size;
	uint64_t body_len;
	EVP_MD_CTX *md;
	unsigned char *wbuf;     /* SPOOL_WBUF_SIZE */
	size_t wlen;
	bool is_failed;          /* a write failed: only abort is left */
	bool is_batch;           /* finish with spool_batch_writer_finish */
};

struct spool_msg {
	struct spool_env env;
	int fd;
	uint64_t body_off;
	uint64_t body_len;
};

/* State kept in state/<id> that is not part of struct spool_env. */
struct spool_state_extra {
	int held_from;           /* enum spool_queue or -1 */
};

/* spool_file.c */
enum spool_parse_flags {
	SPOOL_PARSE_VERIFY_HASH = 1u << 0,
};
int spool_file_parse(int fd, const char *want_id, enum spool_parse_flags flags,
	struct spool_env *env, uint64_t *body_off_r, uint64_t *body_len_r,
	struct sg_error *err);
/* spool_writer_finish - flush, patch the length, write envelope and trailer,
 * fsync and close; the file stays in tmp/. 0 or -1 (file still there). A
 * batch writer (is_batch) is neither fsync'ed nor closed: the caller takes
 * w->fd. */
int spool_writer_finish(struct spool_writer *w, struct sg_error *err);
/* spool_file_check - structure and trailer (not the hash) of q/id; its
 * envelope into env_r (free with spool_env_free_fields) unless NULL. */
int spool_file_check(struct spool *sp, enum spool_queue q, const char *id,
	struct spool_env *env_r, struct sg_error *err);
/* spool_writer_free_keep - free the writer but leave its tmp file alone. */
void spool_writer_free_keep(struct spool_writer **wp);

/* spool_io.c: every write/fsync/rename goes through these (fault-injection
 * hook); -1 with errno set on failure. */
int spool_io_inject(void);
int spool_io_write(int fd, const void *buf, size_t len);
int spool_io_pwrite(int fd, const void *buf, size_t len, uint64_t off);
int spool_io_fsync(int fd);
int spool_io_rename(const char *from, const char *to);
/* spool_io_fsync_dir - fsync directory path; err set on failure. */
int spool_io_fsync_dir(const char *path, struct sg_error *err);

/* spool_queue.c */
/* spool_path - "<spooldir>/<sub>/<id>" (id may be NULL) into out (4096). */
int spool_path(const struct spool *sp, const char *sub, const char *id, char *out,
	size_t outsz, struct sg_error *err);
int spool_check_id(const char *id, struct sg_error *err);
bool spool_queue_is_valid(enum spool_queue q);
/* spool_list_dir - cb for every valid mail ID named in sub/ (a queue or an
 * extra directory). */
int spool_list_dir(struct spool *sp, const char *sub, spool_list_cb *cb, void *arg,
	struct sg_error *err);

/* spool_batch.c */
/* spool_batch_output_recover - recovery of queue q's batch output env whose
 * input may still exist (in done/ or incoming/): the output's body hash is
 * checked in full; if intact it is made durable and the input removed (1),
 * if not the output is removed and the input goes back to incoming/ to be
 * processed again (2); 0 nothing to do, -1 error. */
int spool_batch_output_recover(struct spool *sp, enum spool_queue q,
	const struct spool_env *env, struct sg_error *err);
/* spool_batch_requeue_done - recovery, after every output was checked: an
 * input left in done/ (its output is gone) goes back to incoming/. Count of
 * inputs moved, or -1. */
int spool_batch_requeue_done(struct spool *sp, unsigned *count_r, struct sg_error *err);
/* spool_batch_settle - before a batch output's state changes (a state file,
 * a move, see spool_state_write): if its input still waits in done/, fsync
 * the output and its directory, then remove the input. 0 or -1. */
int spool_batch_settle(struct spool *sp, const struct spool_env *env,
	struct sg_error *err);
/* spool_batch_parent_drop - the output env is finished (delivered or
 * deleted): remove its input from done/ and the input's state, if there.
 * Never fails (a leftover goes back to incoming/ at the next recovery). */
void spool_batch_parent_drop(struct spool *sp, const struct spool_env *env);
int spool_batch_recover(struct spool *sp, unsigned *done_r, unsigned *damaged_r,
	struct sg_error *err);

/* spool_file.c: the verified-files table (see struct spool_verified) */
void spool_verified_init(struct spool *sp);
void spool_verified_deinit(struct spool *sp);

/* spool_pool.c */
void spool_pool_init(struct spool *sp);
void spool_pool_deinit(struct spool *sp);
/* spool_pool_enable - start pooling (spool_recover, after emptying free/). */
void spool_pool_enable(struct spool *sp);
/* spool_pool_open - a new file at path (must not exist), opened O_WRONLY:
 * a recycled one when the pool has any, else created (0600). fd or -1. */
int spool_pool_open(struct spool *sp, const char *path);
/* spool_pool_put - remove a finished message file: into the pool, or
 * unlinked when not pooling or full. 0 or -1 with errno (ENOENT: gone). */
int spool_pool_put(struct spool *sp, const char *path);
size_t spool_pool_size(struct spool *sp);

/* spool_state.c */
int spool_state_load(struct spool *sp, struct spool_env *env,
	struct spool_state_extra *extra, struct sg_error *err);
int spool_state_write(struct spool *sp, const struct spool_env *env,
	const struct spool_state_extra *extra, struct sg_error *err);
int spool_state_parse(const unsigned char *data, size_t len, struct spool_env *env,
	struct spool_state_extra *extra, struct sg_error *err);
int spool_state_remove(struct spool *sp, const char *id, struct sg_error *err);

/* big-endian helpers */
static inline void spool_put_u32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static inline void spool_put_u64(unsigned char *p, uint64_t v)
{
	spool_put_u32(p, (uint32_t)(v >> 32));
	spool_put_u32(p + 4, (uint32_t)v);
}

static inline uint32_t spool_get_u32(const unsigned char *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) |
		(uint32_t)p[3];
}

static inline uint64_t spool_get_u64(const unsigned char *p)
{
	return ((uint64_t)spool_get_u32(p) << 32) | spool_get_u32(p + 4);
}

#endif
