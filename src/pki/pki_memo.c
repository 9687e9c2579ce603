/*
 * pki_memo.c - per-context memos of the answers every outgoing message asks
 * for again (issue 7: CPU per message): the certificate selections of
 * pki_select.c (owner chain + address -> thumbprints and verdicts) and the
 * signers' issuer chains (pki_cert_chain_get1), plus the plain decoded
 * certificate of a thumbprint (pki_cert_x509_get1).
 *
 * Any thread, own struct pki (the memos belong to the context: no locks).
 *
 * Invariants (fail closed): an entry is used only under the generation it
 * was made under - "pki.generation" in the settings table, bumped in the
 * same transaction as every change to certificates, keys, selections,
 * roots, CRLs and the CTL, by any process - and only before its expiry: the
 * earliest expiry of the verdicts it was built from (10 minutes at most,
 * never past a notAfter in a chain). So a change, a CRL import or a
 * certificate's expiry is seen by the next call.
 */
#include <stdlib.h>
#include <string.h>

#include "pki/pki_int.h"

#define PKI_CHAIN_TTL 600

/* memo_hash - 64-bit FNV-1a of a key, only to pick a slot */
static uint64_t memo_hash(const char *s)
{
	uint64_t h = 14695981039346656037ull;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return h;
}

static void memo_slot_clear(struct pki_memo_slot *s)
{
	free(s->key);
	pki_selection_free(&s->sel);
	memset(s, 0, sizeof(*s));
}

int pki_memo_get(struct pki *pki, const char *key, int64_t gen, struct pki_selection *sel_r,
	int *found_r)
{
	struct pki_memo_slot *s;

	if (pki->memo == NULL)
		return 0;
	s = &pki->memo[memo_hash(key) % PKI_MEMO_SLOTS];
	if (s->key == NULL || s->generation != gen || s->expires <= sg_now() ||
		strcmp(s->key, key) != 0)
		return 0;
	sel_r->n = s->sel.n;
	sel_r->v = NULL;
	if (s->sel.n > 0) {
		sel_r->v = sg_xmalloc(s->sel.n * sizeof(*sel_r->v));
		memcpy(sel_r->v, s->sel.v, s->sel.n * sizeof(*sel_r->v));
	}
	*found_r = s->found;
	return 1;
}

void pki_memo_put(struct pki *pki, const char *key, int64_t gen, int64_t expires,
	const struct pki_selection *sel, int found)
{
	struct pki_memo_slot *s;

	if (expires <= sg_now())
		return;
	if (pki->memo == NULL)
		pki->memo = sg_xcalloc(PKI_MEMO_SLOTS, sizeof(*pki->memo));
	s = &pki->memo[memo_hash(key) % PKI_MEMO_SLOTS];
	memo_slot_clear(s);
	s->key = sg_xstrdup(key);
	s->generation = gen;
	s->expires = expires;
	s->found = found;
	s->sel.n = sel->n;
	if (sel->n > 0) {
		s->sel.v = sg_xmalloc(sel->n * sizeof(*s->sel.v));
		memcpy(s->sel.v, sel->v, sel->n * sizeof(*s->sel.v));
	}
}

static void chain_slot_clear(struct pki_chain_slot *s)
{
	X509_free(s->cert);
	if (s->issuers != NULL)
		sk_X509_pop_free(s->issuers, X509_free);
	memset(s, 0, sizeof(*s));
}

void pki_memo_free(struct pki *pki)
{
	size_t i;

	if (pki->memo != NULL) {
		for (i = 0; i < PKI_MEMO_SLOTS; i++)
			memo_slot_clear(&pki->memo[i]);
		free(pki->memo);
		pki->memo = NULL;
	}
	if (pki->chains != NULL) {
		for (i = 0; i < PKI_CHAIN_SLOTS; i++)
			chain_slot_clear(&pki->chains[i]);
		free(pki->chains);
		pki->chains = NULL;
	}
}

/* x509_load - the stored certificate t (normalised) from its row */
static int x509_load(struct pki *pki, const char *t, X509 **x_r, struct sg_error *err)
{
	struct store_stmt *st;
	const unsigned char *der;
	size_t len = 0;
	int rc;

	*x_r = NULL;
	st = store_prepare(pki->db, "SELECT der FROM pki_cert WHERE thumbprint = ?", err);
	if (st == NULL)
		return -1;
	store_bind_text(st, 1, t);
	rc = store_stmt_step(st, err);
	if (rc == 1) {
		der = store_col_blob(st, 0, &len);
		/* decoded once per process (pki_objcache.c) */
		*x_r = der != NULL ? pki_x509_from_der(der, len) : NULL;
		if (*x_r == NULL) {
			sg_error_set(err, SG_E_PARSE, "stored certificate %.16s... does not "
				"decode", t);
			rc = -1;
		}
	}
	store_stmt_free(&st);
	return rc;
}

/* chain_slot - the slot of thumbprint t (the table made at first use) */
static struct pki_chain_slot *chain_slot(struct pki *pki, const char *t)
{
	if (pki->chains == NULL)
		pki->chains = sg_xcalloc(PKI_CHAIN_SLOTS, sizeof(*pki->chains));
	return &pki->chains[memo_hash(t) % PKI_CHAIN_SLOTS];
}

/* cert_get1 - the certificate t (normalised) under gen: from its slot (a
 * certificate's bytes never change; that it is still stored is what gen
 * says: a delete bumps it) or loaded into the slot. 1, 0 not stored, -1. */
static int cert_get1(struct pki *pki, const char *t, int64_t gen, X509 **x_r,
	struct sg_error *err)
{
	struct pki_chain_slot *s = chain_slot(pki, t);
	X509 *x = NULL;
	int r;

	*x_r = NULL;
	if (s->cert != NULL && s->generation == gen && strcmp(s->thumbprint, t) == 0) {
		X509_up_ref(s->cert);
		*x_r = s->cert;
		return 1;
	}
	r = x509_load(pki, t, &x, err);
	if (r <= 0)
		return r;
	chain_slot_clear(s);
	sg_strlcpy(s->thumbprint, t, sizeof(s->thumbprint));
	s->generation = gen;
	X509_up_ref(x);
	s->cert = x;   /* issuers: not built yet */
	*x_r = x;
	return 1;
}

int pki_cert_x509_get1(struct pki *pki, const char *thumbprint, X509 **x_r,
	struct sg_error *err)
{
	char t[PKI_THUMBPRINT_LEN + 1];
	int64_t gen = 0;

	*x_r = NULL;
	sg_strlcpy(t, thumbprint, sizeof(t));
	if (strlen(thumbprint) != PKI_THUMBPRINT_LEN || pki_thumbprint_normalize(t, NULL) < 0)
		return 0;  /* cannot be stored: not found */
	if (pki_generation(pki, &gen, err) < 0)
		return -1;
	return cert_get1(pki, t, gen, x_r, err);
}

/* stack_dup1 - a new stack holding new references to the entries of sk */
static STACK_OF(X509) *stack_dup1(STACK_OF(X509) *sk, struct sg_error *err)
{
	STACK_OF(X509) *d = sk_X509_new_null();
	int i;

	for (i = 0; d != NULL && i < sk_X509_num(sk); i++) {
		X509 *x = sk_X509_value(sk, i);

		if (!sk_X509_push(d, x)) {
			sk_X509_pop_free(d, X509_free);
			d = NULL;
			break;
		}
		X509_up_ref(x);
	}
	if (d == NULL)
		sg_error_set(err, SG_E_NOMEM, "pki: out of memory");
	return d;
}

/* chain_issuers - the issuers of x as pki_certs_export(PKI_EXPORT_CHAIN)
 * exports them (the path built now, without x, each once) and how long
 * they hold */
static int chain_issuers(struct pki *pki, X509 *x, STACK_OF(X509) **issuers_r,
	int64_t *expires_r, struct sg_error *err)
{
	STACK_OF(X509) *chain = NULL, *out = sk_X509_new_null();
	int64_t now = sg_now();
	int xerr, depth, i, j, rc = -1;

	*expires_r = now + PKI_CHAIN_TTL;
	if (out == NULL) {
		sg_error_set(err, SG_E_NOMEM, "pki: out of memory");
		return -1;
	}
	if (pki_chain_build(pki, x, now, &chain, &xerr, &depth, err) < 0)
		goto out;
	for (i = 0; i < sk_X509_num(chain); i++) {
		X509 *c = sk_X509_value(chain, i);
		int64_t na = pki_asn1_time(X509_get0_notAfter(c));
		bool dup = X509_cmp(c, x) == 0;

		/* a different path may be built once a certificate expired */
		if (na >= now && na < *expires_r)
			*expires_r = na + 1;
		for (j = 0; !dup && j < sk_X509_num(out); j++)
			dup = X509_cmp(sk_X509_value(out, j), c) == 0;
		if (dup)
			continue;
		if (!sk_X509_push(out, c)) {
			sg_error_set(err, SG_E_NOMEM, "pki: out of memory");
			goto out;
		}
		X509_up_ref(c);
	}
	*issuers_r = out;
	out = NULL;
	rc = 0;
out:
	if (out != NULL)
		sk_X509_pop_free(out, X509_free);
	if (chain != NULL)
		sk_X509_pop_free(chain, X509_free);
	return rc;
}

int pki_cert_chain_get1(struct pki *pki, const char *thumbprint, X509 **cert_r,
	STACK_OF(X509) **issuers_r, struct sg_error *err)
{
	char t[PKI_THUMBPRINT_LEN + 1];
	struct pki_chain_slot *s;
	STACK_OF(X509) *issuers = NULL;
	X509 *x = NULL;
	int64_t gen = 0, expires;
	int r;

	*cert_r = NULL;
	*issuers_r = NULL;
	sg_strlcpy(t, thumbprint, sizeof(t));
	if (strlen(thumbprint) != PKI_THUMBPRINT_LEN || pki_thumbprint_normalize(t, NULL) < 0)
		return 0;
	if (pki_generation(pki, &gen, err) < 0)
		return -1;
	s = chain_slot(pki, t);
	if (s->cert != NULL && s->issuers != NULL && s->generation == gen &&
		s->expires > sg_now() && strcmp(s->thumbprint, t) == 0) {
		*issuers_r = stack_dup1(s->issuers, err);
		if (*issuers_r == NULL)
			return -1;
		X509_up_ref(s->cert);
		*cert_r = s->cert;
		return 1;
	}
	r = cert_get1(pki, t, gen, &x, err);
	if (r <= 0)
		return r;
	if (chain_issuers(pki, x, &issuers, &expires, err) < 0) {
		X509_free(x);
		return -1;
	}
	*issuers_r = stack_dup1(issuers, err);
	if (*issuers_r == NULL) {
		sk_X509_pop_free(issuers, X509_free);
		X509_free(x);
		return -1;
	}
	/* (the slot of t may have been reused while the chain was built) */
	s = chain_slot(pki, t);
	chain_slot_clear(s);
	sg_strlcpy(s->thumbprint, t, sizeof(s->thumbprint));
	s->generation = gen;
	s->expires = expires;
	s->issuers = issuers;
	X509_up_ref(x);
	s->cert = x;
	*cert_r = x;
	return 1;
}
