/*
 * template_store.c - stored templates (table "template", migration 0300):
 * load the one in force for an owner chain (user <- domain <- wildcard <-
 * global <- factory), save after validation, reset, list.
 *
 * Called by the MPA stages, the CLI and the HTTP API in any thread, each
 * with its own store connection. Owner strings are the policy module's
 * ("user:a@x.com", "domain:x.com", "wildcard:*.x.com", "global").
 */
#include "template_int.h"

#include <stdlib.h>
#include <string.h>

#define TPL_OWNERS_MAX 8

void template_src_free(struct template_src **srcp)
{
	if (srcp == NULL || *srcp == NULL)
		return;
	free((*srcp)->text);
	free((*srcp)->owner);
	free(*srcp);
	*srcp = NULL;
}

/* tpl_owner_level - the level an owner string names; -1 for a bad form. */
static int tpl_owner_level(const char *owner, enum policy_level *level_r)
{
	if (strcmp(owner, "global") == 0)
		*level_r = POLICY_LEVEL_GLOBAL;
	else if (strncmp(owner, "user:", 5) == 0 && owner[5] != '\0')
		*level_r = POLICY_LEVEL_USER;
	else if (strncmp(owner, "domain:", 7) == 0 && owner[7] != '\0')
		*level_r = POLICY_LEVEL_DOMAIN;
	else if (strncmp(owner, "wildcard:*.", 11) == 0 && owner[11] != '\0')
		*level_r = POLICY_LEVEL_WILDCARD;
	else
		return -1;
	return 0;
}

static struct template_src *tpl_src_factory(const struct template_def *def,
	enum template_id id)
{
	struct template_src *src = sg_xcalloc(1, sizeof(*src));

	src->id = id;
	src->text = sg_xstrdup(def->factory);
	src->level = POLICY_LEVEL_FACTORY;
	src->owner = sg_xstrdup("");
	return src;
}

int template_load(struct store *db, enum template_id id, const char *const *owners,
	size_t nowners, struct template_src **src_r, struct sg_error *err)
{
	static const char *const global_only[] = {"global"};
	const struct template_def *def = template_def(id);
	struct store_stmt *st = NULL;
	struct template_src *src = NULL;
	enum policy_level level;
	size_t i, best = TPL_OWNERS_MAX;
	int rc = -1, r;

	*src_r = NULL;
	if (def == NULL) {
		sg_error_set(err, SG_E_INVAL, "unknown template %d", (int)id);
		return -1;
	}
	if (owners == NULL || nowners == 0 || (def->flags & TEMPLATE_F_GLOBAL_ONLY) != 0) {
		owners = global_only;
		nowners = 1;
	}
	if (nowners > TPL_OWNERS_MAX) {
		sg_error_set(err, SG_E_INVAL, "template %s: more than %d owners", def->name,
			TPL_OWNERS_MAX);
		return -1;
	}
	for (i = 0; i < nowners; i++) {
		if (tpl_owner_level(owners[i], &level) < 0) {
			sg_error_set(err, SG_E_INVAL, "template %s: bad owner '%s'", def->name,
				owners[i]);
			return -1;
		}
	}
	/* one query for the whole chain; the most specific row wins */
	st = store_prepare(db, "SELECT owner, body, updated FROM template WHERE name = ? AND "
		"owner IN (?, ?, ?, ?, ?, ?, ?, ?)", err);
	if (st == NULL)
		goto out;
	store_bind_text(st, 1, def->name);
	for (i = 0; i < TPL_OWNERS_MAX; i++)
		store_bind_text(st, (int)i + 2, i < nowners ? owners[i] : owners[0]);
	while ((r = store_stmt_step(st, err)) == 1) {
		const char *owner = store_col_text(st, 0), *body = store_col_text(st, 1);

		for (i = 0; i < nowners && i < best; i++) {
			if (owner == NULL || body == NULL || strcmp(owner, owners[i]) != 0)
				continue;
			best = i;
			template_src_free(&src);
			src = sg_xcalloc(1, sizeof(*src));
			src->id = id;
			src->text = sg_xstrdup(body);
			src->owner = sg_xstrdup(owner);
			src->updated = store_col_int64(st, 2);
			(void)tpl_owner_level(owner, &src->level);
			break;
		}
	}
	if (r < 0) {
		sg_error_prefix(err, "template %s: ", def->name);
		goto out;
	}
	if (src == NULL)
		src = tpl_src_factory(def, id);
	*src_r = src;
	src = NULL;
	rc = 0;
out:
	template_src_free(&src);
	store_stmt_free(&st);
	return rc;
}

int template_load_props(struct store *db, enum template_id id, const struct policy_props *pp,
	struct template_src **src_r, struct sg_error *err)
{
	char owners[4][POLICY_OWNER_MAX];
	const char *ptrs[4];
	size_t n = 0, i;

	*src_r = NULL;
	if (policy_owner_chain(pp, owners, &n) < 0) {
		sg_error_set(err, SG_E_INTERNAL, "template: no owner chain");
		return -1;
	}
	for (i = 0; i < n && i < 4; i++)
		ptrs[i] = owners[i];
	return template_load(db, id, ptrs, n, src_r, err);
}

int template_owner(enum policy_kind kind, const char *name, char *out, size_t outsz,
	struct sg_error *err)
{
	char norm[POLICY_ADDR_MAX > POLICY_DOMAIN_MAX ? POLICY_ADDR_MAX : POLICY_DOMAIN_MAX];

	switch (kind) {
	case POLICY_KIND_GLOBAL:
		sg_strlcpy(out, "global", outsz);
		return 0;
	case POLICY_KIND_USER:
		if (name == NULL || policy_addr_normalize(name, norm, sizeof(norm), err) < 0)
			break;
		snprintf(out, outsz, "user:%s", norm);
		return 0;
	case POLICY_KIND_DOMAIN:
		if (name == NULL || policy_domain_normalize(name, POLICY_DOM_ALLOW_WILDCARD, norm,
			sizeof(norm), err) < 0)
			break;
		snprintf(out, outsz, "%s:%s", norm[0] == '*' ? "wildcard" : "domain", norm);
		return 0;
	}
	if (name == NULL)
		sg_error_set(err, SG_E_INVAL, "no name given");
	return -1;
}

int template_save(struct store *db, enum template_id id, const char *owner, const char *text,
	size_t len, struct sg_error *err)
{
	const struct template_def *def = template_def(id);
	struct store_stmt *st;
	enum policy_level level;
	int rc;

	if (def == NULL || owner == NULL || tpl_owner_level(owner, &level) < 0) {
		sg_error_set(err, SG_E_INVAL, "template: bad template or owner");
		return -1;
	}
	if ((def->flags & TEMPLATE_F_GLOBAL_ONLY) != 0 && level != POLICY_LEVEL_GLOBAL) {
		sg_error_set(err, SG_E_INVAL, "template %s can only be set at the global level",
			def->name);
		return -1;
	}
	if (template_validate(id, text, len, err) < 0)
		return -1;
	st = store_prepare(db, "INSERT INTO template (owner, name, body, updated) "
		"VALUES (?, ?, ?, ?) ON CONFLICT (owner, name) DO UPDATE SET "
		"body = excluded.body, updated = excluded.updated", err);
	if (st == NULL)
		return -1;
	store_bind_text(st, 1, owner);
	store_bind_text(st, 2, def->name);
	{
		char *copy = sg_xstrndup(text, len);

		store_bind_text(st, 3, copy);
		free(copy);
	}
	store_bind_int64(st, 4, sg_now());
	rc = store_stmt_step(st, err) < 0 ? -1 : 0;
	store_stmt_free(&st);
	if (rc < 0)
		sg_error_prefix(err, "template %s: ", def->name);
	return rc;
}

int template_reset(struct store *db, enum template_id id, const char *owner,
	struct sg_error *err)
{
	const struct template_def *def = template_def(id);
	struct store_stmt *st;
	enum policy_level level;
	int rc;

	if (def == NULL || owner == NULL || tpl_owner_level(owner, &level) < 0) {
		sg_error_set(err, SG_E_INVAL, "template: bad template or owner");
		return -1;
	}
	if ((def->flags & TEMPLATE_F_GLOBAL_ONLY) != 0 && level != POLICY_LEVEL_GLOBAL) {
		sg_error_set(err, SG_E_INVAL, "template %s can only be set at the global level",
			def->name);
		return -1;
	}
	st = store_prepare(db, "DELETE FROM template WHERE owner = ? AND name = ?", err);
	if (st == NULL)
		return -1;
	store_bind_text(st, 1, owner);
	store_bind_text(st, 2, def->name);
	rc = store_stmt_step(st, err);
	if (rc >= 0)
		rc = store_changes(st) > 0 ? 1 : 0;
	store_stmt_free(&st);
	return rc;
}

int template_list_stored(struct store *db, const char *owner, size_t limit,
	struct template_stored **items_r, size_t *n_r, struct sg_error *err)
{
	struct store_stmt *st;
	struct template_stored *items = NULL;
	size_t n = 0, cap = 0;
	int r = 0;

	*items_r = NULL;
	*n_r = 0;
	if (limit == 0 || limit > 100000)
		limit = 100000;
	st = store_prepare(db, owner != NULL ?
		"SELECT name, owner, updated FROM template WHERE owner = ? ORDER BY name, owner" :
		"SELECT name, owner, updated FROM template ORDER BY name, owner", err);
	if (st == NULL)
		return -1;
	if (owner != NULL)
		store_bind_text(st, 1, owner);
	while (n < limit && (r = store_stmt_step(st, err)) == 1) {
		const char *name = store_col_text(st, 0), *own = store_col_text(st, 1);
		enum template_id id;

		if (name == NULL || own == NULL || template_find(name, &id) != 1)
			continue;
		if (n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			items = sg_xrealloc(items, cap * sizeof(*items));
		}
		items[n].id = id;
		items[n].owner = sg_xstrdup(own);
		items[n].updated = store_col_int64(st, 2);
		n++;
	}
	if (n < limit && r < 0) {
		store_stmt_free(&st);
		template_stored_free(items, n);
		return -1;
	}
	store_stmt_free(&st);
	*items_r = items;
	*n_r = n;
	return 0;
}

void template_stored_free(struct template_stored *items, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(items[i].owner);
	free(items);
}
