/*
 * policy_resolve.c - the resolver: user <- domain <- wildcard domain <-
 * global <- factory (F-POL-2), with an in-memory cache of the properties set
 * on each object, invalidated by the store's generation counter.
 *
 * Called by policy_decide, the CLI (show, explain) and the store writes (to
 * check an object's effective subject trigger). One struct policy per thread;
 * nothing here is shared between threads.
 *
 * Wildcards: "*.example.com" applies to example.com itself and to every
 * subdomain at any depth. For a domain only the most specific existing
 * wildcard applies (they do not chain): for a.b.example.com the candidates
 * are *.a.b.example.com, *.b.example.com, *.example.com, *.com in that order.
 * A user of sub.example.com does not inherit the plain domain example.com.
 *
 * Invariants: resolved property sets hold references to the immutable cache
 * entries they use, so flushing the cache never invalidates them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy_int.h"

#define POLICY_CACHE_DEFAULT 262144

/* ---------------------------------------------------------------- entries */

void policy_entry_unref(struct policy_entry **ep)
{
	struct policy_entry *e = *ep;
	size_t i;

	*ep = NULL;
	if (e == NULL || --e->refs > 0)
		return;
	for (i = 0; i < e->n; i++)
		free(e->vals[i].value);
	for (i = 0; i < POLICY_DERIVED_N; i++)
		free(e->derived[i]);
	free(e->vals);
	free(e->name);
	free(e);
}

/* FNV-1a: keys are short owner strings */
static size_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return (size_t)h;
}

void policy_cache_flush(struct policy_cache *c)
{
	size_t i;

	for (i = 0; i < c->cap; i++) {
		if (c->slots[i] != NULL)
			policy_entry_unref(&c->slots[i]);
	}
	c->count = 0;
}

void policy_cache_deinit(struct policy_cache *c)
{
	policy_cache_flush(c);
	free(c->slots);
	c->slots = NULL;
	c->cap = 0;
}

static struct policy_entry *cache_find(struct policy_cache *c, const char *key)
{
	size_t i;

	if (c->cap == 0)
		return NULL;
	for (i = hash_str(key) & (c->cap - 1); c->slots[i] != NULL; i = (i + 1) & (c->cap - 1)) {
		if (strcmp(c->slots[i]->name, key) == 0)
			return c->slots[i];
	}
	return NULL;
}

/* cache_put - insert e (the cache takes one reference) */
static void cache_put(struct policy_cache *c, struct policy_entry *e)
{
	size_t i;

	if (c->count >= c->max)
		policy_cache_flush(c);
	if ((c->count + 1) * 2 > c->cap) {
		size_t ncap = c->cap != 0 ? c->cap * 2 : 1024, k;
		struct policy_entry **ns = sg_xcalloc(ncap, sizeof(*ns));

		for (k = 0; k < c->cap; k++) {
			struct policy_entry *o = c->slots[k];

			if (o == NULL)
				continue;
			for (i = hash_str(o->name) & (ncap - 1); ns[i] != NULL; i = (i + 1) & (ncap - 1))
				;
			ns[i] = o;
		}
		free(c->slots);
		c->slots = ns;
		c->cap = ncap;
	}
	for (i = hash_str(e->name) & (c->cap - 1); c->slots[i] != NULL; i = (i + 1) & (c->cap - 1))
		;
	c->slots[i] = e;
	c->count++;
}

/* entry_get - the cached entry for owner (borrowed from the cache) */
static struct policy_entry *entry_get(struct policy *p, const char *owner,
	struct sg_error *err)
{
	struct policy_entry *e = cache_find(&p->cache, owner);

	if (e != NULL) {
		p->hits++;
		return e;
	}
	p->misses++;
	if (policy_store_load(p, owner, &e, err) < 0)
		return NULL;
	cache_put(&p->cache, e);
	return e;
}

/* --------------------------------------------------------------- resolver */

struct policy *policy_new(struct store *db, const struct policy_opts *opts)
{
	struct policy *p = sg_xcalloc(1, sizeof(*p));

	p->db = db;
	p->hostname = sg_xstrdup(opts != NULL && opts->hostname != NULL ? opts->hostname :
		"localhost");
	p->cache.max = opts != NULL && opts->cache_max != 0 ? opts->cache_max :
		POLICY_CACHE_DEFAULT;
	p->sync_interval_ms = opts != NULL ? opts->sync_interval_ms : 0;
	p->generation = -1;
	return p;
}

void policy_free(struct policy **pp)
{
	struct policy *p = *pp;
	size_t i;

	if (p == NULL)
		return;
	policy_cache_deinit(&p->cache);
	policy_stmts_free(p);
	for (i = 0; i < POLICY_RE_CACHE; i++) {
		free(p->re_cache[i].pattern);
		policy_regex_free(&p->re_cache[i].re);
	}
	free(p->hostname);
	free(p);
	*pp = NULL;
}

void policy_invalidate(struct policy *p)
{
	policy_cache_flush(&p->cache);
	p->generation = -1;
}

int policy_sync(struct policy *p, struct sg_error *err)
{
	int64_t gen, now = 0;

	if (p->sync_interval_ms > 0 && p->generation >= 0) {
		now = sg_mono_ms();
		if (now - p->last_sync_ms < p->sync_interval_ms)
			return 0;
	}
	if (policy_store_generation(p, &gen, err) < 0)
		return -1;
	if (gen != p->generation) {
		policy_cache_flush(&p->cache);
		p->generation = gen;
	}
	p->last_sync_ms = now != 0 ? now : sg_mono_ms();
	return 0;
}

void policy_cache_stats(const struct policy *p, uint64_t *hits_r, uint64_t *misses_r)
{
	*hits_r = p->hits;
	*misses_r = p->misses;
}

/* props_layer - hold e; the values set on it (when the object exists)
 * override the lower levels */
static void props_layer(struct policy_props *pp, struct policy_entry *e,
	enum policy_level level)
{
	size_t i;

	if (e == NULL)
		return;
	e->refs++;
	pp->src[level] = e;
	if (!e->is_present)
		return;
	for (i = 0; i < e->n; i++) {
		pp->val[e->vals[i].id] = e->vals[i].value;
		pp->level[e->vals[i].id] = (unsigned char)level;
	}
}

/* props_build - factory values, then each present level from low to high */
static struct policy_props *props_build(struct policy_entry *g, struct policy_entry *w,
	struct policy_entry *d, struct policy_entry *u)
{
	struct policy_props *pp = sg_xcalloc(1, sizeof(*pp));
	unsigned i;

	for (i = 0; i < POLICY_P__COUNT; i++) {
		pp->val[i] = policy_prop_def((enum policy_prop_id)i)->def;
		pp->level[i] = POLICY_LEVEL_FACTORY;
	}
	pp->val[POLICY_P_OTP_URL] = g->derived[POLICY_DV_OTP_URL];
	pp->val[POLICY_P_PDF_REPLY_URL] = g->derived[POLICY_DV_PDF_REPLY_URL];
	pp->val[POLICY_P_SYSTEM_MAIL_FROM] = g->derived[POLICY_DV_SYSTEM_MAIL_FROM];
	pp->val[POLICY_P_SERVER_SECRET] = g->derived[POLICY_DV_SERVER_SECRET];
	props_layer(pp, g, POLICY_LEVEL_GLOBAL);
	props_layer(pp, w, POLICY_LEVEL_WILDCARD);
	props_layer(pp, d, POLICY_LEVEL_DOMAIN);
	props_layer(pp, u, POLICY_LEVEL_USER);
	return pp;
}

/* wildcard_for - the most specific existing wildcard covering domain, NULL
 * when none; -1 on a store error */
static int wildcard_for(struct policy *p, const char *domain, struct policy_entry **w_r,
	struct sg_error *err)
{
	char owner[POLICY_OWNER_MAX];
	const char *s = domain;

	*w_r = NULL;
	while (s != NULL && *s != '\0') {
		struct policy_entry *e;

		snprintf(owner, sizeof(owner), "wildcard:*.%s", s);
		e = entry_get(p, owner, err);
		if (e == NULL)
			return -1;
		if (e->is_present) {
			*w_r = e;
			return 0;
		}
		s = strchr(s, '.');
		if (s != NULL)
			s++;
	}
	return 0;
}

int policy_resolve_user(struct policy *p, const char *email, struct policy_props **props_r,
	struct sg_error *err)
{
	char addr[POLICY_ADDR_MAX], owner[POLICY_OWNER_MAX];
	struct policy_entry *g, *w, *d, *u;
	const char *dom;

	*props_r = NULL;
	if (policy_addr_normalize(email, addr, sizeof(addr), err) < 0)
		return -1;
	if (policy_sync(p, err) < 0)
		return -1;
	dom = strchr(addr, '@') + 1;
	snprintf(owner, sizeof(owner), "user:%s", addr);
	/* entries stay in the cache for the whole call: nothing inserts more
	 * than cache.max in between (a flush only happens on insert) - but a
	 * flush may drop earlier ones, so take references as we go */
	u = entry_get(p, owner, err);
	if (u == NULL)
		return -1;
	u->refs++;
	snprintf(owner, sizeof(owner), "domain:%s", dom);
	d = entry_get(p, owner, err);
	if (d == NULL)
		goto bad_u;
	d->refs++;
	if (wildcard_for(p, dom, &w, err) < 0)
		goto bad_d;
	if (w != NULL)
		w->refs++;
	g = entry_get(p, "global", err);
	if (g == NULL)
		goto bad_w;
	*props_r = props_build(g, w, d, u);
	policy_entry_unref(&w);
	policy_entry_unref(&d);
	policy_entry_unref(&u);
	return 0;
bad_w:
	policy_entry_unref(&w);
bad_d:
	policy_entry_unref(&d);
bad_u:
	policy_entry_unref(&u);
	return -1;
}

int policy_resolve_domain(struct policy *p, const char *domain,
	struct policy_props **props_r, struct sg_error *err)
{
	char norm[POLICY_DOMAIN_MAX], owner[POLICY_OWNER_MAX];
	struct policy_entry *g, *w = NULL, *d = NULL;

	*props_r = NULL;
	if (policy_domain_normalize(domain, POLICY_DOM_ALLOW_WILDCARD, norm, sizeof(norm),
		err) < 0)
		return -1;
	if (policy_sync(p, err) < 0)
		return -1;
	if (norm[0] == '*') {
		snprintf(owner, sizeof(owner), "wildcard:%s", norm);
		w = entry_get(p, owner, err);
		if (w == NULL)
			return -1;
		w->refs++;
	} else {
		snprintf(owner, sizeof(owner), "domain:%s", norm);
		d = entry_get(p, owner, err);
		if (d == NULL)
			return -1;
		d->refs++;
		if (wildcard_for(p, norm, &w, err) < 0)
			goto bad;
		if (w != NULL)
			w->refs++;
	}
	g = entry_get(p, "global", err);
	if (g == NULL)
		goto bad;
	*props_r = props_build(g, w, d, NULL);
	policy_entry_unref(&w);
	policy_entry_unref(&d);
	return 0;
bad:
	policy_entry_unref(&w);
	policy_entry_unref(&d);
	return -1;
}

int policy_resolve_global(struct policy *p, struct policy_props **props_r,
	struct sg_error *err)
{
	struct policy_entry *g;

	*props_r = NULL;
	if (policy_sync(p, err) < 0)
		return -1;
	g = entry_get(p, "global", err);
	if (g == NULL)
		return -1;
	*props_r = props_build(g, NULL, NULL, NULL);
	return 0;
}

void policy_props_free(struct policy_props **pp)
{
	struct policy_props *p = *pp;
	unsigned i;

	if (p == NULL)
		return;
	for (i = 0; i <= POLICY_LEVEL_USER; i++)
		policy_entry_unref(&p->src[i]);
	free(p);
	*pp = NULL;
}

const char *policy_props_get(const struct policy_props *pp, enum policy_prop_id id,
	enum policy_level *level_r)
{
	if ((unsigned)id >= POLICY_P__COUNT) {
		if (level_r != NULL)
			*level_r = POLICY_LEVEL_FACTORY;
		return NULL;
	}
	if (level_r != NULL)
		*level_r = (enum policy_level)pp->level[id];
	return pp->val[id];
}

const char *policy_props_owner(const struct policy_props *pp, enum policy_level level)
{
	const struct policy_entry *e;
	const char *colon;

	if ((unsigned)level > POLICY_LEVEL_USER)
		return "";
	e = pp->src[level];
	if (e == NULL || !e->is_present || level <= POLICY_LEVEL_GLOBAL)
		return "";
	colon = strchr(e->name, ':');
	return colon != NULL ? colon + 1 : "";
}

bool policy_props_is_true(const struct policy_props *pp, enum policy_prop_id id)
{
	const char *v = policy_props_get(pp, id, NULL);

	return v != NULL && strcmp(v, "true") == 0;
}

int64_t policy_props_int(const struct policy_props *pp, enum policy_prop_id id)
{
	const char *v = policy_props_get(pp, id, NULL);
	int64_t i = 0;

	if (v == NULL || sg_parse_i64(v, INT64_MIN, INT64_MAX, &i) < 0)
		return 0;
	return i;
}

int policy_owner_chain(const struct policy_props *pp, char owners[4][POLICY_OWNER_MAX],
	size_t *n_r)
{
	static const enum policy_level order[] = {POLICY_LEVEL_USER, POLICY_LEVEL_DOMAIN,
		POLICY_LEVEL_WILDCARD, POLICY_LEVEL_GLOBAL};
	size_t i, n = 0;

	for (i = 0; i < 4; i++) {
		const struct policy_entry *e = pp->src[order[i]];

		/* the user's and domain's names are fixed even when they do not
		 * exist (selections may be made first); a wildcard only counts
		 * when it exists (it was chosen among several candidates) */
		if (e == NULL || (!e->is_present && order[i] == POLICY_LEVEL_WILDCARD))
			continue;
		sg_strlcpy(owners[n++], e->name, POLICY_OWNER_MAX);
	}
	*n_r = n;
	return 0;
}

const struct policy_regex *policy_regex_cached(struct policy *p, const char *pattern,
	unsigned flags, struct sg_error *err)
{
	struct policy_re_cache_item *it;
	struct policy_regex *re;
	size_t i;

	for (i = 0; i < POLICY_RE_CACHE; i++) {
		it = &p->re_cache[i];
		if (it->re != NULL && it->flags == flags && strcmp(it->pattern, pattern) == 0)
			return it->re;
	}
	re = policy_regex_new(pattern, flags, err);
	if (re == NULL)
		return NULL;
	it = &p->re_cache[p->re_next];
	p->re_next = (p->re_next + 1) % POLICY_RE_CACHE;
	free(it->pattern);
	policy_regex_free(&it->re);
	it->pattern = sg_xstrdup(pattern);
	it->flags = flags;
	it->re = re;
	return re;
}
