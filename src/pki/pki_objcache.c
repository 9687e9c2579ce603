/*
 * pki_objcache.c - process-wide caches of decoded OpenSSL objects, keyed by
 * the exact bytes they were decoded from.
 *
 * Decoding is the expensive part of using a stored certificate or key in
 * OpenSSL 3.0 (d2i_X509 and PKCS#8 go through the provider decoders, which
 * take global locks): measured 25% of the daemon's CPU when signing. The
 * same bytes always decode to the same object, so a cache keyed by the bytes
 * themselves (compared in full, not by a hash) needs no invalidation: a
 * deleted key is no longer found in the store, a changed one has other
 * bytes. Direct-mapped, bounded, thread-safe (one mutex per cache, held only
 * for the lookup); objects are shared with up-references.
 */
#include "pki_int.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

/* fnv1a - 64-bit FNV-1a, only to pick a slot */
static uint64_t fnv1a(const unsigned char *p, size_t len)
{
	uint64_t h = 14695981039346656037ull;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= p[i];
		h *= 1099511628211ull;
	}
	return h;
}

static struct pki_objcache_slot *slot_of(struct pki_objcache *c, const void *bytes,
	size_t len)
{
	return &c->slots[fnv1a(bytes, len) % PKI_OBJCACHE_SLOTS];
}

void *pki_objcache_get(struct pki_objcache *c, const void *bytes, size_t len)
{
	struct pki_objcache_slot *s = slot_of(c, bytes, len);
	void *obj = NULL;

	pthread_mutex_lock(&c->mu);
	if (s->obj != NULL && s->len == len && memcmp(s->bytes, bytes, len) == 0 &&
		c->up_ref(s->obj))
		obj = s->obj;
	pthread_mutex_unlock(&c->mu);
	return obj;
}

void pki_objcache_put(struct pki_objcache *c, const void *bytes, size_t len, void *obj)
{
	struct pki_objcache_slot *s = slot_of(c, bytes, len);
	unsigned char *copy;
	unsigned char *old_bytes = NULL;
	size_t old_len = 0;
	void *old = NULL;

	if (len > PKI_OBJCACHE_MAX_BYTES || !c->up_ref(obj))
		return;
	copy = sg_xmalloc(len);
	memcpy(copy, bytes, len);
	pthread_mutex_lock(&c->mu);
	old = s->obj;
	old_bytes = s->bytes;
	old_len = s->len;
	s->obj = obj;
	s->bytes = copy;
	s->len = len;
	pthread_mutex_unlock(&c->mu);
	if (old != NULL)
		c->free(old);
	if (old_bytes != NULL) {
		/* key blobs are encrypted, but leave nothing behind anyway */
		OPENSSL_cleanse(old_bytes, old_len);
		free(old_bytes);
	}
}
