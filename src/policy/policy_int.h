/*
 * policy_int.h - private to src/policy/: cached level entries, resolved
 * property sets, the resolver struct and helpers shared between the parts.
 */
#ifndef SG_POLICY_INT_H
#define SG_POLICY_INT_H

#include "policy/policy.h"

enum policy_derived_idx {
	POLICY_DV_OTP_URL,
	POLICY_DV_PDF_REPLY_URL,
	POLICY_DV_SYSTEM_MAIL_FROM,
	POLICY_DV_SERVER_SECRET,
	POLICY_DERIVED_N
};

#define POLICY_HEADER_NAME_MAX 128

/* The properties explicitly set on one object (one level), immutable once
 * loaded and shared by reference between the cache and resolved sets. */
struct policy_entry_val {
	enum policy_prop_id id;
	char *value;
};
struct policy_entry {
	unsigned refs;
	bool is_present;     /* the object exists in the store */
	char *name;          /* owner string, the cache key: "user:a@x.com",
	                        "domain:x.com", "wildcard:*.x.com", "global" */
	size_t n;
	struct policy_entry_val *vals;
	/* global entry only: factory values derived at run time (otp_url,
	 * pdf_reply_url, system_mail_from, server_secret from store_init) */
	char *derived[POLICY_DERIVED_N];
};

struct policy_props {
	const char *val[POLICY_P__COUNT];
	unsigned char level[POLICY_P__COUNT];
	struct policy_entry *src[POLICY_LEVEL_USER + 1]; /* held references */
};

struct policy_cache {
	struct policy_entry **slots;
	size_t cap;    /* power of two */
	size_t count;
	size_t max;
};

struct policy_re_cache_item {
	char *pattern;
	unsigned flags;
	struct policy_regex *re;
};
#define POLICY_RE_CACHE 16

struct policy {
	struct store *db;
	char *hostname;
	int64_t generation;   /* -1 = unknown */
	int64_t sync_interval_ms;
	int64_t last_sync_ms; /* monotonic */
	struct policy_cache cache;
	uint64_t hits, misses;
	struct store_stmt *st_gen;
	struct store_stmt *st_user;    /* does a user exist */
	struct store_stmt *st_domain;  /* does a domain exist */
	struct store_stmt *st_props;   /* properties of one owner */
	struct policy_re_cache_item re_cache[POLICY_RE_CACHE];
	size_t re_next;
};

/* policy_store.c */
int policy_store_generation(struct policy *p, int64_t *gen_r, struct sg_error *err);
/* policy_store_load - a new entry (refs 1) for owner string owner. */
int policy_store_load(struct policy *p, const char *owner, struct policy_entry **entry_r,
	struct sg_error *err);
void policy_stmts_free(struct policy *p);
/* policy_owner_make - the owner string of an object whose name is already
 * normalised ("*.x" is a wildcard domain). */
void policy_owner_make(enum policy_kind kind, const char *name, char *out, size_t outsz);

/* policy_resolve.c */
void policy_entry_unref(struct policy_entry **ep);
void policy_cache_flush(struct policy_cache *c);
void policy_cache_deinit(struct policy_cache *c);
/* policy_invalidate - drop the cache after a local write. */
void policy_invalidate(struct policy *p);
/* policy_regex_cached - compiled regex from the resolver's small cache
 * (borrowed until policy_free). NULL + err on a bad pattern. */
const struct policy_regex *policy_regex_cached(struct policy *p, const char *pattern,
	unsigned flags, struct sg_error *err);

/* policy_prop.c */
/* policy_derived_compute - the derived factory values for a global entry. */
void policy_derived_compute(struct policy_entry *g, const char *hostname);

/* policy_regex.c */
/* policy_header_trigger_split - name into name (size namesz) and the value
 * regex (*re_r malloc'ed, NULL = any value). 0 ok, -1 err. */
int policy_header_trigger_split(const char *spec, char *name, size_t namesz,
	char **re_r, struct sg_error *err);
/* policy_header_match - 1 some occurrence of name matches re (NULL = any). */
int policy_header_match(const char *name, const struct policy_regex *re,
	policy_header_fn *fn, void *arg, struct sg_error *err);
/* policy_subject_trigger_re - policy_subject_trigger with a compiled trigger. */
int policy_subject_trigger_re(const struct policy_regex *re, const char *subject,
	unsigned flags, char **subject_r, size_t *tail_off_r, struct sg_error *err);

/* policy_name.c */
/* policy_trim_ws - strip ASCII whitespace at both ends in place; returns s. */
char *policy_trim_ws(char *s);

#endif
