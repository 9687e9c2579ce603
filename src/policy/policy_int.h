/*
 * policy_int.h - private to src/policy/: cached level entries, resolved
 * property sets, the resolver struct and helpers shared between the parts.
 */
#ifndef SG_POLICY_INT_H
#define SG_POLICY_INT_H

#include "policy/policy.h"

/* The properties explicitly set on one object (one level), immutable once
 * loaded and shared by reference between the cache and resolved sets. */
struct policy_entry_val {
	enum policy_prop_id id;
	char *value;
};
struct policy_entry {
	unsigned refs;
	bool is_present;     /* the object exists in the store */
	char *name;          /* cache key "u:addr", "d:name", "g:" */
	size_t n;
	struct policy_entry_val *vals;
	/* global entry only: factory values derived from it (otp_url,
	 * pdf_reply_url, system_mail_from) */
	char *derived[3];
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
	struct policy_cache cache;
	uint64_t hits, misses;
	struct store_stmt *st_gen;
	struct store_stmt *st_user;
	struct store_stmt *st_domain;
	struct policy_re_cache_item re_cache[POLICY_RE_CACHE];
	size_t re_next;
};

/* policy_store.c */
int policy_store_generation(struct policy *p, int64_t *gen_r, struct sg_error *err);
int policy_store_load(struct policy *p, enum policy_kind kind, const char *name,
	struct policy_entry **entry_r, struct sg_error *err);
void policy_stmts_free(struct policy *p);

/* policy_resolve.c */
void policy_entry_unref(struct policy_entry **ep);
void policy_cache_flush(struct policy_cache *c);
void policy_cache_deinit(struct policy_cache *c);
/* policy_regex_cached - compiled regex from the resolver's small cache
 * (borrowed until policy_free). NULL + err on a bad pattern. */
const struct policy_regex *policy_regex_cached(struct policy *p, const char *pattern,
	unsigned flags, struct sg_error *err);

/* policy_prop.c */
/* policy_derived_compute - the derived factory values for a global entry. */
void policy_derived_compute(struct policy_entry *g, const char *hostname);

/* policy_name.c */
/* policy_trim_ws - strip ASCII whitespace at both ends in place; returns s. */
char *policy_trim_ws(char *s);

#endif
