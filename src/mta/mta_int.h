/*
 * mta_int.h - shared inside src/mta/: the table of settings (name, kind,
 * offset in struct mta_settings, bounds, factory value) and the helpers that
 * format one value, used by mta_settings.c (store/load) and mta_show.c
 * (`sealgate mta show`).
 */
#ifndef SG_MTA_INT_H
#define SG_MTA_INT_H

#include "mta.h"

#include <stddef.h>

enum mta_kind {
	MTA_K_DOMAINS,   /* relay_domains: char ** list */
	MTA_K_NETWORKS,  /* my_networks: char ** list + parsed CIDRs */
	MTA_K_BOOL,
	MTA_K_HOSTNAME,  /* char *, "" = default */
	MTA_K_RELAY,     /* struct mta_relay (host, port) */
	MTA_K_SIZE,      /* uint64_t bytes */
	MTA_K_UINT,      /* unsigned */
	MTA_K_DURATION,  /* unsigned seconds */
	MTA_K_CODE,      /* unsigned 450|550 */
	MTA_K_TLS,       /* enum mta_tls_level */
};

struct mta_def {
	const char *name;
	enum mta_kind kind;
	size_t off;
	uint64_t min, max;
	const char *factory;
};

/* mta_def_count / mta_def_at - the settings in display order. */
size_t mta_def_count(void);
const struct mta_def *mta_def_at(size_t i);
/* mta_def_format - the normalised text of d's value in s (as stored; lists
 * comma-separated, "" when empty). Caller frees. */
char *mta_def_format(const struct mta_settings *s, const struct mta_def *d);
/* mta_tls_level_name - "none", "may", "encrypt", "verify". */
const char *mta_tls_level_name(enum mta_tls_level l);
/* mta_sasl_hostport - "host:port", "[v6]:port" for IPv6. Caller frees. */
char *mta_sasl_hostport(const char *host, unsigned port);

#endif
