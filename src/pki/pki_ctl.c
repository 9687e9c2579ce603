/*
 * pki_ctl.c - the certificate trust list (SPEC F-PKI-6): white or black
 * entries by thumbprint (the certificate need not be stored), "allow expired"
 * for white entries. Black listing is applied to every certificate of a built
 * path by pki_verify.c (so it is inherited down the chain); white makes the
 * certificate an anchor for itself only.
 *
 * Any thread, own struct pki. Every change bumps the verdict generation.
 */
#include <string.h>

#include "pki/pki_int.h"

const char *pki_ctl_kind_name(enum pki_ctl_kind k)
{
	return k == PKI_CTL_BLACK ? "black" : "white";
}

/* norm - copy and validate a thumbprint */
static int norm(const char *in, char *out, struct sg_error *err)
{
	if (strlen(in) != PKI_THUMBPRINT_LEN) {
		sg_error_set(err, SG_E_INVAL, "bad thumbprint (want %d hex digits of SHA-512)",
			PKI_THUMBPRINT_LEN);
		return -1;
	}
	sg_strlcpy(out, in, PKI_THUMBPRINT_LEN + 1);
	return pki_thumbprint_normalize(out, err);
}

int pki_ctl_set(struct pki *pki, const char *thumbprint, enum pki_ctl_kind kind,
	unsigned flags, struct sg_error *err)
{
	char t[PKI_THUMBPRINT_LEN + 1];
	struct store_stmt *st = NULL;
	bool own = false;
	int rc = -1;

	if (norm(thumbprint, t, err) < 0)
		return -1;
	if ((flags & PKI_CTL_ALLOW_EXPIRED) != 0 && kind != PKI_CTL_WHITE) {
		sg_error_set(err, SG_E_INVAL, "allow-expired applies to white entries only");
		return -1;
	}
	if (pki_tx_begin(pki, &own, err) < 0)
		return -1;
	st = store_prepare(pki->db, "DELETE FROM pki_ctl WHERE thumbprint = ?", err);
	if (st == NULL)
		goto out;
	store_bind_text(st, 1, t);
	if (store_stmt_step(st, err) < 0)
		goto out;
	store_stmt_free(&st);
	st = store_prepare(pki->db, "INSERT INTO pki_ctl (thumbprint, kind, allow_expired, "
		"created) VALUES (?, ?, ?, ?)", err);
	if (st == NULL)
		goto out;
	store_bind_text(st, 1, t);
	store_bind_text(st, 2, pki_ctl_kind_name(kind));
	store_bind_int64(st, 3, (flags & PKI_CTL_ALLOW_EXPIRED) != 0);
	store_bind_int64(st, 4, sg_now());
	if (store_stmt_step(st, err) < 0)
		goto out;
	if (pki_generation_bump(pki, err) < 0)
		goto out;
	rc = 0;
out:
	store_stmt_free(&st);
	return pki_tx_end(pki, own, rc, err);
}

/* row_entry - fill e from (thumbprint, kind, allow_expired, created) */
static void row_entry(struct store_stmt *st, struct pki_ctl_entry *e)
{
	sg_strlcpy(e->thumbprint, store_col_text(st, 0), sizeof(e->thumbprint));
	e->kind = strcmp(store_col_text(st, 1), "black") == 0 ? PKI_CTL_BLACK : PKI_CTL_WHITE;
	e->allow_expired = store_col_int64(st, 2) != 0;
	e->created = store_col_int64(st, 3);
}

int pki_ctl_get(struct pki *pki, const char *thumbprint, struct pki_ctl_entry *e_r,
	struct sg_error *err)
{
	struct store_stmt *st;
	int rc;

	st = store_prepare(pki->db, "SELECT thumbprint, kind, allow_expired, created FROM "
		"pki_ctl WHERE thumbprint = ?", err);
	if (st == NULL)
		return -1;
	store_bind_text(st, 1, thumbprint);
	rc = store_stmt_step(st, err);
	if (rc == 1)
		row_entry(st, e_r);
	store_stmt_free(&st);
	return rc;
}

int pki_ctl_delete(struct pki *pki, const char *thumbprint, struct sg_error *err)
{
	char t[PKI_THUMBPRINT_LEN + 1];
	struct store_stmt *st = NULL;
	bool own = false;
	int rc = -1;

	if (norm(thumbprint, t, err) < 0)
		return -1;
	if (pki_tx_begin(pki, &own, err) < 0)
		return -1;
	st = store_prepare(pki->db, "DELETE FROM pki_ctl WHERE thumbprint = ?", err);
	if (st == NULL)
		goto out;
	store_bind_text(st, 1, t);
	if (store_stmt_step(st, err) < 0)
		goto out;
	if (store_changes(st) == 0) {
		sg_error_set(err, SG_E_NOTFOUND, "no CTL entry for %.16s...", t);
		goto out;
	}
	if (pki_generation_bump(pki, err) < 0)
		goto out;
	rc = 0;
out:
	store_stmt_free(&st);
	return pki_tx_end(pki, own, rc, err);
}

int pki_ctl_list(struct pki *pki, pki_ctl_cb *cb, void *arg, struct sg_error *err)
{
	struct pki_ctl_entry e;
	struct store_stmt *st;
	int r;

	st = store_prepare(pki->db, "SELECT thumbprint, kind, allow_expired, created FROM "
		"pki_ctl ORDER BY thumbprint", err);
	if (st == NULL)
		return -1;
	while ((r = store_stmt_step(st, err)) == 1) {
		row_entry(st, &e);
		r = cb(&e, arg, err);
		if (r != 0)
			break;
	}
	store_stmt_free(&st);
	return r < 0 ? -1 : 0;
}
