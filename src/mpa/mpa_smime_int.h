/*
 * mpa_smime_int.h - helpers shared by mpa_smime.c (outgoing: sign, encrypt)
 * and mpa_smime_in.c (incoming: decrypt, verify, result fields). Private to
 * src/mpa.
 */
#ifndef SG_MPA_SMIME_INT_H
#define SG_MPA_SMIME_INT_H

#include "mpa_int.h"
#include "pki/pki_key.h"
#include "smime/smime.h"

/* An owner chain for src/pki built from policy_owner_chain (names point into
 * owners). */
struct mpa_chain {
	char owners[4][POLICY_OWNER_MAX];
	struct pki_owner v[4];
	size_t n;
};

/* mpa_chain_of - the owner chain of pp (user, domain, wildcard, global);
 * 0, or -1 with err. */
int mpa_chain_of(const struct policy_props *pp, struct mpa_chain *c, struct sg_error *err);

/* mpa_rcpt_dec - the decision of envelope recipient i (borrowed). */
const struct policy_decision *mpa_rcpt_dec(const struct mpa_ctx *ctx, size_t i);

/*
 * mpa_scratch_get - an anonymous temporary file (memfd) positioned at 0 for
 * sequential writes from the start: one mpa_scratch_put kept, else a new
 * one. A kept file still has the length (and pages) of its last use: read
 * only what was written this time (smime_*_fd and mime_msg_write_fd report
 * the lengths). -1 with err.
 */
int mpa_scratch_get(struct mpa *mpa, struct sg_error *err);
/*
 * mpa_scratch_put - done with *fdp (-1 is fine; set to -1): cut to what was
 * written (its current offset: nothing of this use, and nothing older, is
 * left past it) and kept for the next message when it is at most
 * MPA_SCRATCH_KEEP bytes and there is room, else closed. Creating a memfd
 * and freeing its pages cost more than the S/MIME glue around them. Never
 * for a file a message still reads (mime_msg_open_fd holds a dup).
 */
void mpa_scratch_put(struct mpa *mpa, int *fdp);

/* mpa_msg_to_fd - serialise m into a scratch file (mpa_scratch_get); the fd
 * (caller puts it back or closes it) with *len_r bytes, or -1 (SG_E_LIMIT
 * over max). */
int mpa_msg_to_fd(struct mpa *mpa, struct mime_msg *m, uint64_t max, uint64_t *len_r,
	struct sg_error *err);

/* mpa_tmp_fd - an empty anonymous temporary file (memfd), or -1 with err. */
int mpa_tmp_fd(struct sg_error *err);

/* mpa_keys_open - the private-key API on the worker's PKI (data_dir from the
 * configuration), opened once per struct mpa (the KEK file is read at the
 * first use, not for every message) and borrowed: callers do not close it.
 * NULL with err when there is no configuration or the KEK cannot be read. */
struct pki_keys *mpa_keys_open(struct mpa_ctx *ctx, struct sg_error *err);

enum mpa_ct_kind {
	MPA_CT_OTHER,
	MPA_CT_ENCRYPTED,   /* S/MIME enveloped/authEnveloped or PGP/MIME encrypted */
	MPA_CT_SMIME,       /* any other S/MIME (signed, or pkcs7-mime without a
	                       smime-type we can rely on) */
};
/* mpa_msg_ct_kind - classify m by its top-level Content-Type field. */
enum mpa_ct_kind mpa_msg_ct_kind(struct mime_msg *m);

/* mpa_is_temporary - err is of the temporary class (database, I/O). */
bool mpa_is_temporary(const struct sg_error *err);

#endif
