/*
 * pki_select.c - certificate selection (SPEC F-PKI-4): manual selections of
 * users, domains (including wildcard domains) and the global settings, kept
 * in pki_selection by (owner_kind, owner_name) text; the encryption
 * certificates of a recipient (union over the owner chain + automatic by
 * address), the additional (escrow) certificates, and the one signing
 * certificate. Only usable certificates are returned for use; with
 * PKI_SELECT_UNUSABLE the unusable ones come back too, with the reason.
 *
 * Any thread, own struct pki. The owner chain comes from the caller (policy):
 * PKI knows nothing else about users and domains.
 *
 * The answers of pki_select_encryption/additional/signing are kept per
 * context (pki_memo.c) under the store's generation, which every change to
 * selections, certificates, keys, roots, CRLs and the CTL bumps, and until
 * the earliest expiry of the verdicts they were built from; a message asks
 * the same questions twice (policy's has-certificate check, then the
 * method) and every message of a sender/recipient pair asks them again.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "pki/pki_int.h"

#define OWNER_NAME_MAX 320

static const char *const sel_kinds[] = {"encrypt", "sign", "additional"};

const char *pki_sel_kind_name(enum pki_sel_kind k)
{
	return (unsigned)k < 3 ? sel_kinds[k] : "?";
}

const char *pki_owner_kind_name(enum pki_owner_kind k)
{
	switch (k) {
	case PKI_OWNER_USER:
		return "user";
	case PKI_OWNER_DOMAIN:
		return "domain";
	case PKI_OWNER_GLOBAL:
	default:
		return "global";
	}
}

/* domain_ok - letters, digits, '-', '.', optional leading "*." */
static bool domain_ok(const char *d)
{
	size_t i;

	if (strncmp(d, "*.", 2) == 0)
		d += 2;
	if (d[0] == '\0' || d[0] == '.' || strlen(d) > 253)
		return false;
	for (i = 0; d[i] != '\0'; i++) {
		unsigned char ch = (unsigned char)d[i];

		if (!isalnum(ch) && ch != '-' && ch != '.' && ch != '_')
			return false;
	}
	return true;
}

bool pki_owner_is_valid(const struct pki_owner *o)
{
	const char *name = o->name != NULL ? o->name : "";

	switch (o->kind) {
	case PKI_OWNER_USER:
		return strlen(name) <= OWNER_NAME_MAX && sg_addr_is_valid(name);
	case PKI_OWNER_DOMAIN:
		return domain_ok(name);
	case PKI_OWNER_GLOBAL:
		return name[0] == '\0';
	default:
		return false;
	}
}

/* owner_norm - validate and lower-case the name into name (OWNER_NAME_MAX+1) */
static int owner_norm(const struct pki_owner *o, char *name, struct sg_error *err)
{
	if (!pki_owner_is_valid(o)) {
		sg_error_set(err, SG_E_INVAL, "bad %s \"%.100s\"", pki_owner_kind_name(o->kind),
			o->name != NULL ? o->name : "");
		return -1;
	}
	sg_strlcpy(name, o->name != NULL ? o->name : "", OWNER_NAME_MAX + 1);
	sg_str_lower(name);
	return 0;
}

/* thumb_norm - copy and validate a thumbprint */
static int thumb_norm(const char *in, char *out, struct sg_error *err)
{
	if (strlen(in) != PKI_THUMBPRINT_LEN) {
		sg_error_set(err, SG_E_INVAL, "bad thumbprint (want %d hex digits of SHA-512)",
			PKI_THUMBPRINT_LEN);
		return -1;
	}
	sg_strlcpy(out, in, PKI_THUMBPRINT_LEN + 1);
	return pki_thumbprint_normalize(out, err);
}

/* run_owner - prepare sql with (owner_kind, owner_name, kind[, thumb]) bound */
static struct store_stmt *run_owner(struct pki *pki, const char *sql,
	const struct pki_owner *o, const char *name, enum pki_sel_kind kind,
	const char *thumb, struct sg_error *err)
{
	struct store_stmt *st = store_prepare(pki->db, sql, err);

	if (st == NULL)
		return NULL;
	store_bind_text(st, 1, pki_owner_kind_name(o->kind));
	store_bind_text(st, 2, name);
	store_bind_text(st, 3, pki_sel_kind_name(kind));
	if (thumb != NULL)
		store_bind_text(st, 4, thumb);
	return st;
}

int pki_select_add(struct pki *pki, const struct pki_owner *owner, enum pki_sel_kind kind,
	const char *thumbprint, struct sg_error *err)
{
	char name[OWNER_NAME_MAX + 1], t[PKI_THUMBPRINT_LEN + 1];
	struct store_stmt *st = NULL;
	struct pki_cert *c = NULL;
	bool own = false;
	int r, rc = -1;

	if (owner_norm(owner, name, err) < 0 || thumb_norm(thumbprint, t, err) < 0)
		return -1;
	if (pki_tx_begin(pki, &own, err) < 0)
		return -1;
	r = pki_cert_get(pki, t, &c, err);
	if (r <= 0) {
		if (r == 0)
			sg_error_set(err, SG_E_NOTFOUND, "certificate %.16s... not found", t);
		goto out;
	}
	if (c->is_root) {
		sg_error_set(err, SG_E_INVAL, "certificate %.16s... is a root, not an S/MIME "
			"certificate", t);
		goto out;
	}
	if (kind == PKI_SEL_SIGN) {
		st = run_owner(pki, "DELETE FROM pki_selection WHERE owner_kind = ? AND "
			"owner_name = ? AND kind = ? AND thumbprint <> ?", owner, name, kind, t, err);
		if (st == NULL || store_stmt_step(st, err) < 0)
			goto out;
		store_stmt_free(&st);
	}
	st = store_prepare(pki->db, "INSERT INTO pki_selection (owner_kind, owner_name, kind, "
		"thumbprint, created) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", err);
	if (st == NULL)
		goto out;
	store_bind_text(st, 1, pki_owner_kind_name(owner->kind));
	store_bind_text(st, 2, name);
	store_bind_text(st, 3, pki_sel_kind_name(kind));
	store_bind_text(st, 4, t);
	store_bind_int64(st, 5, sg_now());
	if (store_stmt_step(st, err) < 0)
		goto out;
	rc = store_changes(st) > 0 ? 1 : 0;
	/* (a signing selection may have replaced another: always bump) */
	if (pki_generation_bump(pki, err) < 0)
		rc = -1;
out:
	store_stmt_free(&st);
	pki_cert_free(&c);
	return pki_tx_end(pki, own, rc, err);
}

int pki_select_remove(struct pki *pki, const struct pki_owner *owner,
	enum pki_sel_kind kind, const char *thumbprint, struct sg_error *err)
{
	char name[OWNER_NAME_MAX + 1], t[PKI_THUMBPRINT_LEN + 1];
	struct store_stmt *st;
	int rc = -1;

	if (owner_norm(owner, name, err) < 0 || thumb_norm(thumbprint, t, err) < 0)
		return -1;
	st = run_owner(pki, "DELETE FROM pki_selection WHERE owner_kind = ? AND "
		"owner_name = ? AND kind = ? AND thumbprint = ?", owner, name, kind, t, err);
	if (st != NULL && store_stmt_step(st, err) >= 0)
		rc = store_changes(st) > 0 ? 1 : 0;
	store_stmt_free(&st);
	if (rc > 0 && pki_generation_bump(pki, err) < 0)
		rc = -1;
	return rc;
}

int pki_select_clear(struct pki *pki, const struct pki_owner *owner,
	enum pki_sel_kind kind, struct sg_error *err)
{
	char name[OWNER_NAME_MAX + 1];
	struct store_stmt *st;
	int rc = -1;

	if (owner_norm(owner, name, err) < 0)
		return -1;
	st = run_owner(pki, "DELETE FROM pki_selection WHERE owner_kind = ? AND "
		"owner_name = ? AND kind = ?", owner, name, kind, NULL, err);
	if (st != NULL && store_stmt_step(st, err) >= 0)
		rc = (int)store_changes(st);
	store_stmt_free(&st);
	if (rc > 0 && pki_generation_bump(pki, err) < 0)
		rc = -1;
	return rc;
}

void pki_selection_free(struct pki_selection *s)
{
	if (s == NULL)
		return;
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

/* origin_str - "user a@x.com", "domain x.com", "global" */
static void origin_str(const struct pki_owner *o, const char *name, char *out, size_t sz)
{
	snprintf(out, sz, "%s%s%s", pki_owner_kind_name(o->kind), name[0] ? " " : "", name);
}

/* What one selection call depends on: the generation read at its start and
 * the earliest expiry of the verdicts it used. */
struct sel_ctx {
	int64_t gen;
	int64_t expires;
};

/* judge - the usability of thumb for kind: 0 verdict filled, -1 error */
static int judge(struct pki *pki, const char *thumb, enum pki_sel_kind kind,
	unsigned verify_flags, struct sel_ctx *sc, struct pki_selected *s,
	struct sg_error *err)
{
	enum pki_purpose purpose = kind == PKI_SEL_SIGN ? PKI_PURPOSE_SIGN : PKI_PURPOSE_ENCRYPT;
	struct pki_verdict v;
	int64_t expires;
	int r;

	r = pki_verify_thumb_gen(pki, thumb, purpose, verify_flags, sc->gen, &v, &expires, err);
	if (r < 0)
		return -1;
	if (expires < sc->expires)
		sc->expires = expires;
	if (r == 0) {
		s->is_usable = false;
		sg_strlcpy(s->reason, "not in the certificate store", sizeof(s->reason));
		return 0;
	}
	s->is_usable = v.is_valid;
	sg_strlcpy(s->reason, v.reason, sizeof(s->reason));
	if (s->is_usable && kind == PKI_SEL_SIGN) {
		struct store_stmt *st = store_prepare(pki->db, "SELECT has_key FROM pki_cert "
			"WHERE thumbprint = ?", err);

		if (st == NULL)
			return -1;
		store_bind_text(st, 1, thumb);
		r = store_stmt_step(st, err);
		if (r == 1 && store_col_int64(st, 0) == 0) {
			s->is_usable = false;
			sg_strlcpy(s->reason, "no private key", sizeof(s->reason));
		}
		store_stmt_free(&st);
		if (r < 0)
			return -1;
	}
	return 0;
}

/* sel_has - thumb already in the selection for kind */
static bool sel_has(const struct pki_selection *sel, const char *thumb,
	enum pki_sel_kind kind)
{
	size_t i;

	for (i = 0; i < sel->n; i++) {
		if (sel->v[i].kind == kind && strcmp(sel->v[i].thumbprint, thumb) == 0)
			return true;
	}
	return false;
}

/* sel_consider - judge thumb and append it when usable (or listing unusable) */
static int sel_consider(struct pki *pki, struct pki_selection *sel, const char *thumb,
	enum pki_sel_kind kind, const char *origin, unsigned flags, unsigned verify_flags,
	struct sel_ctx *sc, struct sg_error *err)
{
	struct pki_selected s;

	if (sel_has(sel, thumb, kind) || sel->n >= PKI_SELECT_MAX)
		return 0;
	memset(&s, 0, sizeof(s));
	sg_strlcpy(s.thumbprint, thumb, sizeof(s.thumbprint));
	s.kind = kind;
	sg_strlcpy(s.origin, origin, sizeof(s.origin));
	if (judge(pki, thumb, kind, verify_flags, sc, &s, err) < 0)
		return -1;
	if (!s.is_usable && (flags & PKI_SELECT_UNUSABLE) == 0)
		return 0;
	sel->v = sg_xrealloc(sel->v, (sel->n + 1) * sizeof(*sel->v));
	sel->v[sel->n++] = s;
	return 0;
}

/* thumbs_of - the selected thumbprints of one owner/kind (malloc'ed array) */
static int thumbs_of(struct pki *pki, const struct pki_owner *o, enum pki_sel_kind kind,
	char (**thumbs_r)[PKI_THUMBPRINT_LEN + 1], size_t *n_r, char *origin, size_t osz,
	struct sg_error *err)
{
	char name[OWNER_NAME_MAX + 1];
	struct store_stmt *st;
	int r;

	*thumbs_r = NULL;
	*n_r = 0;
	if (owner_norm(o, name, err) < 0)
		return -1;
	origin_str(o, name, origin, osz);
	st = run_owner(pki, "SELECT thumbprint FROM pki_selection WHERE owner_kind = ? AND "
		"owner_name = ? AND kind = ? ORDER BY created, thumbprint", o, name, kind, NULL,
		err);
	if (st == NULL)
		return -1;
	while (*n_r < PKI_SELECT_MAX && (r = store_stmt_step(st, err)) == 1) {
		*thumbs_r = sg_xrealloc(*thumbs_r, (*n_r + 1) * sizeof(**thumbs_r));
		sg_strlcpy((*thumbs_r)[(*n_r)++], store_col_text(st, 0), PKI_THUMBPRINT_LEN + 1);
	}
	store_stmt_free(&st);
	if (r < 0) {
		free(*thumbs_r);
		*thumbs_r = NULL;
		return -1;
	}
	return 0;
}

/* union_of - the manual selections of kind over chain into sel */
static int union_of(struct pki *pki, const struct pki_owner *chain, size_t n,
	enum pki_sel_kind kind, unsigned flags, unsigned verify_flags, struct sel_ctx *sc,
	struct pki_selection *sel, struct sg_error *err)
{
	char (*thumbs)[PKI_THUMBPRINT_LEN + 1] = NULL;
	char origin[OWNER_NAME_MAX + 16];
	size_t i, j, k;
	int rc = 0;

	for (i = 0; rc == 0 && i < n; i++) {
		if (thumbs_of(pki, &chain[i], kind, &thumbs, &k, origin, sizeof(origin), err) < 0)
			return -1;
		for (j = 0; rc == 0 && j < k; j++)
			rc = sel_consider(pki, sel, thumbs[j], kind, origin, flags, verify_flags,
				sc, err);
		free(thumbs);
		thumbs = NULL;
	}
	return rc;
}

/* sel_begin - read the generation for one selection call */
static int sel_begin(struct pki *pki, unsigned verify_flags, struct sel_ctx *sc,
	struct sg_error *err)
{
	sc->gen = 0;
	sc->expires = INT64_MAX;
	if ((verify_flags & PKI_VERIFY_NO_CACHE) != 0)
		return 0;
	return pki_generation(pki, &sc->gen, err);
}

/* memo_key - the memo key of one selection call; NULL when it must not be
 * kept (fresh verdicts asked for, or too long). Caller frees. */
static char *memo_key(const char *what, const char *email, const struct pki_owner *chain,
	size_t n, unsigned flags, unsigned verify_flags)
{
	struct sg_buf b;
	struct sg_error e;
	size_t i;
	int rc;

	if ((verify_flags & PKI_VERIFY_NO_CACHE) != 0)
		return NULL;
	sg_buf_init(&b, PKI_MEMO_KEY_MAX);
	/* every string with its length first: unambiguous whatever it holds */
	rc = sg_buf_printf(&b, &e, "%s %u %u %zu:%s", what, flags, verify_flags,
		email != NULL ? strlen(email) : 0, email != NULL ? email : "");
	for (i = 0; rc == 0 && i < n; i++)
		rc = sg_buf_printf(&b, &e, " %d %zu:%s", (int)chain[i].kind,
			chain[i].name != NULL ? strlen(chain[i].name) : 0,
			chain[i].name != NULL ? chain[i].name : "");
	if (rc < 0 || sg_buf_append(&b, "", 1, &e) < 0) {
		sg_buf_deinit(&b);
		return NULL;
	}
	return sg_buf_steal(&b);
}

/* memo_begin - start a selection call: sel_begin, then its memo. 1 the
 * memo answered (sel, *found_r set; *key_r NULL), 0 not (*key_r: the key to
 * keep the answer under, may be NULL), -1 error. */
static int memo_begin(struct pki *pki, const char *what, const char *email,
	const struct pki_owner *chain, size_t n, unsigned flags, unsigned verify_flags,
	struct sel_ctx *sc, char **key_r, struct pki_selection *sel, int *found_r,
	struct sg_error *err)
{
	*key_r = NULL;
	if (sel_begin(pki, verify_flags, sc, err) < 0)
		return -1;
	*key_r = memo_key(what, email, chain, n, flags, verify_flags);
	if (*key_r != NULL && pki_memo_get(pki, *key_r, sc->gen, sel, found_r) == 1) {
		free(*key_r);
		*key_r = NULL;
		return 1;
	}
	return 0;
}

int pki_select_encryption(struct pki *pki, const char *email,
	const struct pki_owner *chain, size_t n, unsigned flags, unsigned verify_flags,
	struct pki_selection *sel_r, struct sg_error *err)
{
	char (*thumbs)[PKI_THUMBPRINT_LEN + 1] = NULL;
	char *key = NULL;
	struct sel_ctx sc;
	int k, i, found, rc = -1;

	memset(sel_r, 0, sizeof(*sel_r));
	k = memo_begin(pki, "encrypt", email, chain, n, flags, verify_flags, &sc, &key, sel_r,
		&found, err);
	if (k != 0)
		return k < 0 ? -1 : 0;
	if (union_of(pki, chain, n, PKI_SEL_ENCRYPT, flags, verify_flags, &sc, sel_r, err) < 0)
		goto out;
	if ((flags & PKI_SELECT_AUTO) != 0 && email != NULL && email[0] != '\0') {
		thumbs = sg_xmalloc(PKI_SELECT_MAX * sizeof(*thumbs));
		k = pki_cert_find_email(pki, email, thumbs, PKI_SELECT_MAX, err);
		if (k < 0)
			goto out;
		for (i = 0; i < k; i++) {
			if (sel_consider(pki, sel_r, thumbs[i], PKI_SEL_ENCRYPT, "auto", flags,
				verify_flags, &sc, err) < 0)
				goto out;
		}
	}
	if (key != NULL)
		pki_memo_put(pki, key, sc.gen, sc.expires, sel_r, 0);
	rc = 0;
out:
	free(thumbs);
	free(key);
	if (rc < 0)
		pki_selection_free(sel_r);
	return rc;
}

int pki_select_additional(struct pki *pki, const struct pki_owner *chain, size_t n,
	unsigned flags, unsigned verify_flags, struct pki_selection *sel_r,
	struct sg_error *err)
{
	char *key;
	struct sel_ctx sc;
	int found, r;

	memset(sel_r, 0, sizeof(*sel_r));
	r = memo_begin(pki, "additional", NULL, chain, n, flags, verify_flags, &sc, &key,
		sel_r, &found, err);
	if (r != 0)
		return r < 0 ? -1 : 0;
	if (union_of(pki, chain, n, PKI_SEL_ADDITIONAL, flags, verify_flags, &sc, sel_r,
		err) < 0) {
		free(key);
		pki_selection_free(sel_r);
		return -1;
	}
	if (key != NULL)
		pki_memo_put(pki, key, sc.gen, sc.expires, sel_r, 0);
	free(key);
	return 0;
}

/* auto_signing - the first usable certificate with a key for email */
static int auto_signing(struct pki *pki, const char *email, unsigned flags,
	unsigned verify_flags, struct sel_ctx *sc, struct pki_selected *sel_r,
	struct sg_error *err)
{
	char addr[OWNER_NAME_MAX + 1];
	struct store_stmt *st;
	int r, found = 0;

	if (strlen(email) > OWNER_NAME_MAX)
		return 0;
	sg_strlcpy(addr, email, sizeof(addr));
	sg_str_lower(addr);
	st = store_prepare(pki->db, (flags & PKI_SELECT_FRESHEST) != 0 ?
		"SELECT c.thumbprint FROM pki_cert_email e JOIN pki_cert c ON c.thumbprint = "
		"e.thumbprint WHERE e.email = ? AND c.has_key = 1 ORDER BY c.not_before DESC, "
		"c.thumbprint LIMIT 1000" :
		"SELECT c.thumbprint FROM pki_cert_email e JOIN pki_cert c ON c.thumbprint = "
		"e.thumbprint WHERE e.email = ? AND c.has_key = 1 ORDER BY c.created, "
		"c.thumbprint LIMIT 1000", err);
	if (st == NULL)
		return -1;
	store_bind_text(st, 1, addr);
	while ((r = store_stmt_step(st, err)) == 1) {
		memset(sel_r, 0, sizeof(*sel_r));
		sg_strlcpy(sel_r->thumbprint, store_col_text(st, 0), sizeof(sel_r->thumbprint));
		sel_r->kind = PKI_SEL_SIGN;
		sg_strlcpy(sel_r->origin, "auto", sizeof(sel_r->origin));
		/* judge runs its own statements: the connection allows that. */
		if (judge(pki, sel_r->thumbprint, PKI_SEL_SIGN, verify_flags, sc, sel_r,
			err) < 0) {
			r = -1;
			break;
		}
		if (sel_r->is_usable) {
			found = 1;
			break;
		}
	}
	store_stmt_free(&st);
	if (r < 0)
		return -1;
	if (!found)
		memset(sel_r, 0, sizeof(*sel_r));
	return found;
}

/* select_signing - pki_select_signing without the memo */
static int select_signing(struct pki *pki, const char *email, const struct pki_owner *chain,
	size_t n, unsigned flags, unsigned verify_flags, struct sel_ctx *sc,
	struct pki_selected *sel_r, struct sg_error *err)
{
	char (*thumbs)[PKI_THUMBPRINT_LEN + 1] = NULL;
	char origin[OWNER_NAME_MAX + 16];
	size_t i, k;

	memset(sel_r, 0, sizeof(*sel_r));
	for (i = 0; i < n; i++) {
		if (thumbs_of(pki, &chain[i], PKI_SEL_SIGN, &thumbs, &k, origin, sizeof(origin),
			err) < 0)
			return -1;
		if (k == 0)
			continue;
		sg_strlcpy(sel_r->thumbprint, thumbs[0], sizeof(sel_r->thumbprint));
		free(thumbs);
		sel_r->kind = PKI_SEL_SIGN;
		sg_strlcpy(sel_r->origin, origin, sizeof(sel_r->origin));
		if (judge(pki, sel_r->thumbprint, PKI_SEL_SIGN, verify_flags, sc, sel_r,
			err) < 0)
			return -1;
		if (sel_r->is_usable)
			return 1;
		/* An unusable manual choice is never used: fall back to automatic. */
		break;
	}
	if ((flags & PKI_SELECT_AUTO) == 0 || email == NULL || email[0] == '\0') {
		memset(sel_r, 0, sizeof(*sel_r));
		return 0;
	}
	return auto_signing(pki, email, flags, verify_flags, sc, sel_r, err);
}

int pki_select_signing(struct pki *pki, const char *email, const struct pki_owner *chain,
	size_t n, unsigned flags, unsigned verify_flags, struct pki_selected *sel_r,
	struct sg_error *err)
{
	struct pki_selection memo = {0};
	char *key;
	struct sel_ctx sc;
	int found, r;

	memset(sel_r, 0, sizeof(*sel_r));
	r = memo_begin(pki, "sign", email, chain, n, flags, verify_flags, &sc, &key, &memo,
		&found, err);
	if (r < 0)
		return -1;
	if (r > 0) {
		if (found == 1 && memo.n == 1)
			*sel_r = memo.v[0];
		else
			found = 0;
		pki_selection_free(&memo);
		return found;
	}
	found = select_signing(pki, email, chain, n, flags, verify_flags, &sc, sel_r, err);
	if (found >= 0 && key != NULL) {
		memo.v = sel_r;
		memo.n = found == 1 ? 1 : 0;
		pki_memo_put(pki, key, sc.gen, sc.expires, &memo, found);
	}
	free(key);
	return found;
}

int pki_select_list(struct pki *pki, const struct pki_owner *owner,
	unsigned verify_flags, struct pki_selection *sel_r, struct sg_error *err)
{
	struct sel_ctx sc;
	size_t k;

	memset(sel_r, 0, sizeof(*sel_r));
	if (sel_begin(pki, verify_flags, &sc, err) < 0)
		return -1;
	for (k = 0; k < 3; k++) {
		if (union_of(pki, owner, 1, (enum pki_sel_kind)k, PKI_SELECT_UNUSABLE,
			verify_flags, &sc, sel_r, err) < 0) {
			pki_selection_free(sel_r);
			return -1;
		}
	}
	return 0;
}
