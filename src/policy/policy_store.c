/*
 * policy_store.c - users, domains, wildcard domains and their properties in
 * the store (migration 0100_policy): loading one object's properties for the
 * resolver cache, the generation counter, and the administrative operations
 * (add, delete with the "domain still has users" rule, search with paging,
 * atomic set/unset of properties).
 *
 * Called through struct policy (one per thread, like its store connection):
 * by the resolver, the CLI and later the REST API. Every write runs in one
 * transaction that also increments policy_generation.gen, so every resolver
 * (in any process) sees the change on its next policy_sync.
 *
 * Invariants: names in the tables are normalised (policy_addr_normalize,
 * policy_domain_normalize); values were written by policy_prop_validate.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy_int.h"

#define POLICY_LIST_DEFAULT 1000
#define POLICY_LIST_MAX 100000

void policy_owner_make(enum policy_kind kind, const char *name, char *out, size_t outsz)
{
	switch (kind) {
	case POLICY_KIND_USER:
		snprintf(out, outsz, "user:%s", name);
		break;
	case POLICY_KIND_DOMAIN:
		snprintf(out, outsz, "%s:%s", name[0] == '*' ? "wildcard" : "domain", name);
		break;
	case POLICY_KIND_GLOBAL:
		sg_strlcpy(out, "global", outsz);
		break;
	}
}

/* stmt_get - prepare *stp once; NULL + err on failure */
static struct store_stmt *stmt_get(struct policy *p, struct store_stmt **stp,
	const char *sql, struct sg_error *err)
{
	if (*stp == NULL)
		*stp = store_prepare(p->db, sql, err);
	else
		store_stmt_reset(*stp);
	return *stp;
}

void policy_stmts_free(struct policy *p)
{
	store_stmt_free(&p->st_gen);
	store_stmt_free(&p->st_user);
	store_stmt_free(&p->st_domain);
	store_stmt_free(&p->st_props);
}

int policy_store_generation(struct policy *p, int64_t *gen_r, struct sg_error *err)
{
	struct store_stmt *st = stmt_get(p, &p->st_gen,
		"SELECT gen FROM policy_generation WHERE id = 1", err);
	int rc;

	if (st == NULL)
		return -1;
	rc = store_stmt_step(st, err);
	if (rc < 0)
		return -1;
	*gen_r = rc == 1 ? store_col_int64(st, 0) : 0;
	store_stmt_reset(st);
	return 0;
}

/* entry_exists - 1/0/-1: the object behind owner exists */
static int entry_exists(struct policy *p, const char *owner, struct sg_error *err)
{
	struct store_stmt *st;
	const char *name;
	int rc;

	if (strncmp(owner, "user:", 5) == 0) {
		st = stmt_get(p, &p->st_user, "SELECT 1 FROM policy_user WHERE email = ?", err);
		name = owner + 5;
	} else if (strcmp(owner, "global") == 0) {
		return 1;
	} else {
		st = stmt_get(p, &p->st_domain, "SELECT 1 FROM policy_domain WHERE name = ?",
			err);
		name = strchr(owner, ':') + 1;
	}
	if (st == NULL)
		return -1;
	store_bind_text(st, 1, name);
	rc = store_stmt_step(st, err);
	store_stmt_reset(st);
	return rc;
}

int policy_store_load(struct policy *p, const char *owner, struct policy_entry **entry_r,
	struct sg_error *err)
{
	struct policy_entry *e = sg_xcalloc(1, sizeof(*e));
	struct store_stmt *st;
	size_t cap = 0;
	int rc;

	e->refs = 1;
	e->name = sg_xstrdup(owner);
	rc = entry_exists(p, owner, err);
	if (rc < 0)
		goto bad;
	e->is_present = rc == 1;
	if (e->is_present) {
		st = stmt_get(p, &p->st_props,
			"SELECT name, value FROM policy_prop WHERE owner = ?", err);
		if (st == NULL)
			goto bad;
		store_bind_text(st, 1, owner);
		while ((rc = store_stmt_step(st, err)) == 1) {
			enum policy_prop_id id;
			const char *v = store_col_text(st, 1);

			/* a name this version does not know (newer schema): skip */
			if (policy_prop_find(store_col_text(st, 0), &id) != 1 || v == NULL)
				continue;
			if (e->n == cap) {
				cap = cap != 0 ? cap * 2 : 8;
				e->vals = sg_xrealloc(e->vals, cap * sizeof(*e->vals));
			}
			e->vals[e->n].id = id;
			e->vals[e->n].value = sg_xstrdup(v);
			e->n++;
		}
		store_stmt_reset(st);
		if (rc < 0)
			goto bad;
	}
	if (strcmp(owner, "global") == 0) {
		char *secret = NULL;

		if (store_setting_get(p->db, "server_secret", &secret, err) < 0)
			goto bad;
		e->derived[POLICY_DV_SERVER_SECRET] = secret;
		policy_derived_compute(e, p->hostname);
	}
	*entry_r = e;
	return 0;
bad:
	sg_error_prefix(err, "policy: load %s: ", owner);
	policy_entry_unref(&e);
	return -1;
}

/* ---------------------------------------------------------- admin writes */

/* norm_object - normalise name for kind; the level it sets; 0 / -1 */
static int norm_object(enum policy_kind kind, const char *name, char *out, size_t outsz,
	enum policy_level *level_r, struct sg_error *err)
{
	switch (kind) {
	case POLICY_KIND_USER:
		*level_r = POLICY_LEVEL_USER;
		return policy_addr_normalize(name, out, outsz, err);
	case POLICY_KIND_DOMAIN:
		if (policy_domain_normalize(name, POLICY_DOM_ALLOW_WILDCARD, out, outsz, err) < 0)
			return -1;
		*level_r = out[0] == '*' ? POLICY_LEVEL_WILDCARD : POLICY_LEVEL_DOMAIN;
		return 0;
	case POLICY_KIND_GLOBAL:
		out[0] = '\0';
		*level_r = POLICY_LEVEL_GLOBAL;
		return 0;
	}
	sg_error_set(err, SG_E_INVAL, "bad object kind");
	return -1;
}

/* run1 - prepare, bind up to 4 text params (NULL skips), step once, free.
 * Returns the step result (1 row, 0 done) or -1; *changes_r if not NULL. */
static int run1(struct store *db, const char *sql, const char *a, const char *b,
	const char *c, int64_t i4, int64_t *changes_r, struct sg_error *err)
{
	struct store_stmt *st = store_prepare(db, sql, err);
	int rc;

	if (st == NULL)
		return -1;
	if (a != NULL)
		store_bind_text(st, 1, a);
	if (b != NULL)
		store_bind_text(st, 2, b);
	if (c != NULL)
		store_bind_text(st, 3, c);
	if (i4 >= 0)
		store_bind_int64(st, c != NULL ? 4 : b != NULL ? 3 : 2, i4);
	rc = store_stmt_step(st, err);
	if (changes_r != NULL)
		*changes_r = store_changes(st);
	store_stmt_free(&st);
	return rc;
}

static int bump_generation(struct policy *p, struct sg_error *err)
{
	return run1(p->db, "UPDATE policy_generation SET gen = gen + 1 WHERE id = 1", NULL,
		NULL, NULL, -1, NULL, err) < 0 ? -1 : 0;
}

/* ensure_object - insert the user/domain row; SG_E_EXISTS when present and
 * is_strict, else present is fine. */
static int ensure_object(struct policy *p, enum policy_kind kind, const char *norm,
	bool is_strict, struct sg_error *err)
{
	const char *sql;
	int rc;

	if (kind == POLICY_KIND_GLOBAL)
		return 0;
	if (kind == POLICY_KIND_USER) {
		sql = is_strict ?
			"INSERT INTO policy_user (email, domain, created) VALUES (?, ?, ?)" :
			"INSERT INTO policy_user (email, domain, created) VALUES (?, ?, ?) "
			"ON CONFLICT (email) DO NOTHING";
		rc = run1(p->db, sql, norm, strchr(norm, '@') + 1, NULL, sg_now(), NULL, err);
	} else {
		sql = is_strict ? "INSERT INTO policy_domain (name, created) VALUES (?, ?)" :
			"INSERT INTO policy_domain (name, created) VALUES (?, ?) "
			"ON CONFLICT (name) DO NOTHING";
		rc = run1(p->db, sql, norm, NULL, NULL, sg_now(), NULL, err);
	}
	return rc < 0 ? -1 : 0;
}

static void rollback(struct policy *p)
{
	struct sg_error e2;

	store_rollback(p->db, &e2);
	policy_invalidate(p);
}

int policy_object_add(struct policy *p, enum policy_kind kind, const char *name,
	struct sg_error *err)
{
	char norm[POLICY_ADDR_MAX];
	enum policy_level level;

	if (kind == POLICY_KIND_GLOBAL) {
		sg_error_set(err, SG_E_INVAL, "the global level always exists");
		return -1;
	}
	if (norm_object(kind, name, norm, sizeof(norm), &level, err) < 0)
		return -1;
	if (store_begin(p->db, err) < 0)
		return -1;
	if (ensure_object(p, kind, norm, true, err) < 0 || bump_generation(p, err) < 0 ||
		store_commit(p->db, err) < 0) {
		if (err != NULL && err->code == SG_E_EXISTS)
			sg_error_set(err, SG_E_EXISTS, "%s %s already exists",
				kind == POLICY_KIND_USER ? "user" : "domain", norm);
		rollback(p);
		return -1;
	}
	policy_invalidate(p);
	return 0;
}

/* like_escape - lower-cased s with LIKE wildcards escaped by '\' */
static char *like_escape(const char *prefix, const char *s, const char *suffix)
{
	struct sg_buf b;

	sg_buf_init(&b, strlen(s) * 2 + 16);
	sg_buf_append_str(&b, prefix, NULL);
	for (; *s != '\0'; s++) {
		char c = *s;

		if (c == '%' || c == '_' || c == '\\')
			sg_buf_append(&b, "\\", 1, NULL);
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		sg_buf_append(&b, &c, 1, NULL);
	}
	sg_buf_append_str(&b, suffix, NULL);
	return sg_buf_steal(&b);
}

/* domain_has_users - 1 when users keep domain (or, for "*.x", x or any
 * subdomain of x) from being deleted */
static int domain_has_users(struct policy *p, const char *norm, struct sg_error *err)
{
	char *pat;
	int rc;

	if (norm[0] != '*')
		return run1(p->db, "SELECT 1 FROM policy_user WHERE domain = ? LIMIT 1", norm,
			NULL, NULL, -1, NULL, err);
	pat = like_escape("%.", norm + 2, "");
	rc = run1(p->db, "SELECT 1 FROM policy_user WHERE domain = ? OR domain LIKE ? "
		"ESCAPE '\\' LIMIT 1", norm + 2, pat, NULL, -1, NULL, err);
	free(pat);
	return rc;
}

int policy_object_delete(struct policy *p, enum policy_kind kind, const char *name,
	struct sg_error *err)
{
	char norm[POLICY_ADDR_MAX], owner[POLICY_OWNER_MAX];
	enum policy_level level;
	int64_t changes = 0;
	int rc;

	if (kind == POLICY_KIND_GLOBAL) {
		sg_error_set(err, SG_E_INVAL, "the global level cannot be deleted");
		return -1;
	}
	if (norm_object(kind, name, norm, sizeof(norm), &level, err) < 0)
		return -1;
	policy_owner_make(kind, norm, owner, sizeof(owner));
	if (store_begin(p->db, err) < 0)
		return -1;
	if (kind == POLICY_KIND_DOMAIN) {
		rc = domain_has_users(p, norm, err);
		if (rc != 0) {
			if (rc == 1)
				sg_error_set(err, SG_E_POLICY, "domain %s still has users: delete "
					"them first", norm);
			goto bad;
		}
		rc = run1(p->db, "DELETE FROM policy_domain WHERE name = ?", norm, NULL, NULL,
			-1, &changes, err);
	} else {
		rc = run1(p->db, "DELETE FROM policy_user WHERE email = ?", norm, NULL, NULL,
			-1, &changes, err);
	}
	if (rc < 0)
		goto bad;
	if (changes == 0) {
		sg_error_set(err, SG_E_NOTFOUND, "%s %s does not exist",
			kind == POLICY_KIND_USER ? "user" : "domain", norm);
		goto bad;
	}
	if (run1(p->db, "DELETE FROM policy_prop WHERE owner = ?", owner, NULL, NULL, -1,
		NULL, err) < 0 || bump_generation(p, err) < 0 || store_commit(p->db, err) < 0)
		goto bad;
	policy_invalidate(p);
	return 0;
bad:
	rollback(p);
	return -1;
}

int policy_object_exists(struct policy *p, enum policy_kind kind, const char *name,
	struct sg_error *err)
{
	char norm[POLICY_ADDR_MAX], owner[POLICY_OWNER_MAX];
	enum policy_level level;

	if (kind == POLICY_KIND_GLOBAL)
		return 1;
	if (norm_object(kind, name, norm, sizeof(norm), &level, err) < 0)
		return -1;
	policy_owner_make(kind, norm, owner, sizeof(owner));
	return entry_exists(p, owner, err);
}

int policy_object_list(struct policy *p, enum policy_kind kind, const char *search,
	size_t limit, size_t offset, struct policy_list *list_r, struct sg_error *err)
{
	const char *sql_list, *sql_count;
	struct store_stmt *st = NULL;
	char *pat;
	size_t cap = 0;
	int rc = -1;

	memset(list_r, 0, sizeof(*list_r));
	if (kind == POLICY_KIND_USER) {
		sql_list = "SELECT u.email, u.created, (SELECT COUNT(*) FROM policy_prop "
			"WHERE owner = 'user:' || u.email) FROM policy_user u "
			"WHERE u.email LIKE ? ESCAPE '\\' ORDER BY u.email LIMIT ? OFFSET ?";
		sql_count = "SELECT COUNT(*) FROM policy_user WHERE email LIKE ? ESCAPE '\\'";
	} else if (kind == POLICY_KIND_DOMAIN) {
		sql_list = "SELECT d.name, d.created, (SELECT COUNT(*) FROM policy_prop "
			"WHERE owner = 'domain:' || d.name OR owner = 'wildcard:' || d.name) "
			"FROM policy_domain d WHERE d.name LIKE ? ESCAPE '\\' ORDER BY d.name "
			"LIMIT ? OFFSET ?";
		sql_count = "SELECT COUNT(*) FROM policy_domain WHERE name LIKE ? ESCAPE '\\'";
	} else {
		sg_error_set(err, SG_E_INVAL, "only users and domains can be listed");
		return -1;
	}
	if (limit == 0)
		limit = POLICY_LIST_DEFAULT;
	if (limit > POLICY_LIST_MAX)
		limit = POLICY_LIST_MAX;
	pat = like_escape("%", search != NULL ? search : "", "%");
	st = store_prepare(p->db, sql_count, err);
	if (st == NULL)
		goto out;
	store_bind_text(st, 1, pat);
	if (store_stmt_step(st, err) != 1)
		goto out;
	list_r->total = store_col_int64(st, 0);
	store_stmt_free(&st);
	st = store_prepare(p->db, sql_list, err);
	if (st == NULL)
		goto out;
	store_bind_text(st, 1, pat);
	store_bind_int64(st, 2, (int64_t)limit);
	store_bind_int64(st, 3, (int64_t)offset);
	while ((rc = store_stmt_step(st, err)) == 1) {
		struct policy_list_entry *e;

		if (list_r->count == cap) {
			cap = cap != 0 ? cap * 2 : 64;
			list_r->items = sg_xrealloc(list_r->items, cap * sizeof(*list_r->items));
		}
		e = &list_r->items[list_r->count++];
		e->name = sg_xstrdup(store_col_text(st, 0) != NULL ? store_col_text(st, 0) : "");
		e->created = store_col_int64(st, 1);
		e->nprops = (unsigned)store_col_int64(st, 2);
	}
	if (rc < 0)
		goto out;
	rc = 0;
out:
	if (rc < 0)
		policy_list_deinit(list_r);
	store_stmt_free(&st);
	free(pat);
	return rc < 0 ? -1 : 0;
}

void policy_list_deinit(struct policy_list *list)
{
	size_t i;

	for (i = 0; i < list->count; i++)
		free(list->items[i].name);
	free(list->items);
	memset(list, 0, sizeof(*list));
}

/* check_trigger - the object's effective subject trigger compiles when it is
 * a regex (read inside the open transaction) */
static int check_trigger(struct policy *p, enum policy_kind kind, const char *norm,
	struct sg_error *err)
{
	struct policy_props *pp = NULL;
	struct policy_regex *re;
	int rc;

	policy_invalidate(p);
	if (kind == POLICY_KIND_USER)
		rc = policy_resolve_user(p, norm, &pp, err);
	else if (kind == POLICY_KIND_DOMAIN)
		rc = policy_resolve_domain(p, norm, &pp, err);
	else
		rc = policy_resolve_global(p, &pp, err);
	if (rc < 0)
		return -1;
	if (policy_props_is_true(pp, POLICY_P_SUBJECT_TRIGGER_IS_REGEX)) {
		const char *t = policy_props_get(pp, POLICY_P_SUBJECT_TRIGGER, NULL);

		re = policy_regex_new(t != NULL ? t : "", 0, err);
		if (re == NULL) {
			sg_error_prefix(err, "subject_trigger: ");
			rc = -1;
		}
		policy_regex_free(&re);
	}
	policy_props_free(&pp);
	return rc;
}

int policy_object_apply(struct policy *p, enum policy_kind kind, const char *name,
	const struct policy_change *changes, size_t n, struct sg_error *err)
{
	char norm[POLICY_ADDR_MAX], owner[POLICY_OWNER_MAX];
	enum policy_level level;
	char **vals = NULL;
	enum policy_prop_id *ids = NULL;
	size_t i;
	int rc = -1;
	bool is_tx = false;

	if (norm_object(kind, name != NULL ? name : "", norm, sizeof(norm), &level, err) < 0)
		return -1;
	policy_owner_make(kind, norm, owner, sizeof(owner));
	vals = sg_xcalloc(n + 1, sizeof(*vals));
	ids = sg_xcalloc(n + 1, sizeof(*ids));
	/* validate everything before touching the store: all or nothing */
	for (i = 0; i < n; i++) {
		char esc[80];

		if (policy_prop_find(changes[i].name, &ids[i]) != 1) {
			sg_log_esc(esc, sizeof(esc), changes[i].name != NULL ? changes[i].name :
				"", changes[i].name != NULL ? strlen(changes[i].name) : 0);
			sg_error_set(err, SG_E_INVAL, "unknown property '%s'", esc);
			goto out;
		}
		if (changes[i].value == NULL) {
			const struct policy_prop_def *d = policy_prop_def(ids[i]);

			if ((d->flags & POLICY_PF_GLOBAL_ONLY) && level != POLICY_LEVEL_GLOBAL) {
				sg_error_set(err, SG_E_INVAL, "%s can only be set at the global level",
					d->name);
				goto out;
			}
			continue;
		}
		if (policy_prop_validate(ids[i], changes[i].value, level, &vals[i], err) < 0)
			goto out;
	}
	if (store_begin(p->db, err) < 0)
		goto out;
	is_tx = true;
	/* only a set creates the user/domain; unsetting on an absent one is a no-op */
	for (i = 0; i < n && vals[i] == NULL; i++)
		;
	if (i < n && ensure_object(p, kind, norm, false, err) < 0)
		goto out;
	for (i = 0; i < n; i++) {
		const char *pname = policy_prop_def(ids[i])->name;

		if (vals[i] != NULL)
			rc = run1(p->db, "INSERT INTO policy_prop (owner, name, value, updated) "
				"VALUES (?, ?, ?, ?) ON CONFLICT (owner, name) DO UPDATE SET "
				"value = excluded.value, updated = excluded.updated", owner, pname,
				vals[i], sg_now(), NULL, err);
		else
			rc = run1(p->db, "DELETE FROM policy_prop WHERE owner = ? AND name = ?",
				owner, pname, NULL, -1, NULL, err);
		if (rc < 0)
			goto out;
	}
	rc = -1;
	if (bump_generation(p, err) < 0 || check_trigger(p, kind, norm, err) < 0)
		goto out;
	if (store_commit(p->db, err) < 0) {
		is_tx = false;
		policy_invalidate(p);
		goto out;
	}
	is_tx = false;
	policy_invalidate(p);
	rc = 0;
out:
	if (is_tx) {
		rollback(p);
		rc = -1;
	}
	for (i = 0; i < n; i++)
		free(vals[i]);
	free(vals);
	free(ids);
	return rc;
}
