/*
 * mta.h - MTA settings (SPEC F-ADM-5, guide §3): relay domains, my networks,
 * host/HELO names, relay hosts, size limits, hop count, recipient limit,
 * reject unverified recipient, SASL passwords, TLS to the next hop, queue
 * lifetime and retry backoff. They live in the database (settings table, keys
 * "mta.<name>", values as normalised strings) and are read into an immutable,
 * refcounted snapshot by the daemon (reloaded every 30 s and on SIGHUP) that
 * the SMTP listener and the delivery agent share; `sealgate mta show|set|sasl`
 * edits them.
 *
 * Setting names and value syntax (mta_settings_update / mta_setting_set):
 *   relay_domains                   "example.com, example.org" (comma/space
 *                                   list; "none" = empty; default empty)
 *   relay_domains_match_subdomains  yes|no (default yes)
 *   my_networks                     "127.0.0.0/8 ::1/128" CIDR list (default);
 *                                   "[::1]/128" and bare addresses (= /32,
 *                                   /128) accepted; "none" = empty. IPv6
 *                                   networks never match IPv4 clients; write
 *                                   ::ffff:a.b.c.d/n (n >= 96) as IPv4.
 *   hostname, helo_name             host names ("" = config hostname / hostname)
 *   internal_relay_host             "" (none: DNS MX of the recipient domain),
 *   external_relay_host             "host", "host:port", "1.2.3.4:25",
 *                                   "[host]:port", "[2001:db8::1]:25"
 *   internal_relay_mx               yes|no: look up the MX of the relay host
 *   external_relay_mx               (default no; refused for IP addresses).
 *                                   Brackets are only syntax here (needed for
 *                                   IPv6); the MX flag is its own setting.
 *   before_filter_size              bytes or k/M/G (1024-based), 1K..1024G
 *                                   (default 10240000; SMTP 552 above)
 *   after_filter_size               same (default 512000000; must not be below
 *                                   before_filter_size)
 *   max_received_headers            hop count 1..1000 (default 100; 554 above)
 *   max_recipients                  1..100000 per message (default 1000)
 *   reject_unverified_recipient     yes|no (default no)
 *   unverified_recipient_code       450|550 (default 450)
 *   verify_cache_positive           duration: seconds or 30s/10m/2h/31d/1w
 *   verify_cache_negative           (0..365d; defaults 31d and 3d)
 *   tls_level                       none|may|encrypt|verify (default may)
 *   max_queue_lifetime              duration 0..100d (default 5d)
 *   backoff_min, backoff_max        duration 1s..7d (defaults 300s, 4000s);
 *                                   backoff_max must not be below backoff_min
 * Aliases accepted on input: internal_relay, external_relay (the *_host
 * settings), max_message_size (before_filter_size), reject_unverified_code
 * (unverified_recipient_code), queue_lifetime (max_queue_lifetime).
 *
 * SASL credentials: pseudo-setting "sasl.<host>:<port>" (IPv6 host in
 * brackets, port default 25) with value "<username>:<password>" ("" removes);
 * stored as key "mta.sasl.<host>:<port>" = "<username>\n<password>". The
 * password is stored in clear (as Postfix's sasl_passwd: the delivery agent
 * needs it); it is never logged nor shown unless MTA_PRINT_REVEAL.
 */
#ifndef SG_MTA_H
#define SG_MTA_H

#include "lib/lib.h"
#include "store/store.h"

enum mta_tls_level {
	MTA_TLS_NONE,     /* never STARTTLS */
	MTA_TLS_MAY,      /* STARTTLS when offered (default), no verification */
	MTA_TLS_ENCRYPT,  /* STARTTLS required, else temporary failure */
	MTA_TLS_VERIFY,   /* STARTTLS required and the certificate must verify */
};

struct mta_relay {
	char *host;       /* NULL = none: deliver by DNS MX (D-1); else a lower-case
	                     name or a canonical IPv4/IPv6 address (no brackets) */
	unsigned port;    /* default 25 */
	bool use_mx;      /* look up the MX records of host instead of its address;
	                     never true for an IP address host (after load) */
};

struct mta_sasl {
	char *host;       /* normalised like mta_relay.host, so that
	                     mta_sasl_find(s, relay.host, relay.port) matches */
	unsigned port;
	char *username;
	char *password;   /* secret: never logged */
};

/* A parsed network: family is 4 or 6; IPv4-mapped IPv6 networks are stored
 * as IPv4. */
struct mta_cidr {
	int family;
	unsigned char addr[16];
	unsigned prefix;
};

struct mta_settings {
	char **relay_domains;          /* lower case, no trailing dot; may be empty */
	size_t n_relay_domains;
	bool relay_domains_match_subdomains; /* default true */
	char **my_networks;            /* canonical CIDR strings, default 127.0.0.0/8 ::1/128 */
	size_t n_my_networks;
	struct mta_cidr *my_cidrs;     /* parsed my_networks (same order and count) */
	char *hostname;                /* default: config hostname */
	char *helo_name;               /* default: hostname */
	struct mta_relay internal_relay;  /* for recipients in relay domains */
	struct mta_relay external_relay;  /* for every other recipient */
	uint64_t before_filter_size;   /* default 10240000 (SMTP 552 above) */
	uint64_t after_filter_size;    /* default 512000000 */
	unsigned max_received_headers; /* default 100 (hop count, 554 above) */
	unsigned max_recipients;       /* per message, default 1000 (452 above) */
	bool reject_unverified_recipient; /* default false */
	unsigned unverified_recipient_code; /* 450 or 550, default 450 */
	unsigned verify_cache_positive;   /* seconds, default 31 days */
	unsigned verify_cache_negative;   /* seconds, default 3 days */
	enum mta_tls_level tls_level;  /* to the next hop, default MAY */
	unsigned max_queue_lifetime;   /* seconds, default 5 days */
	unsigned backoff_min;          /* seconds, default 300 */
	unsigned backoff_max;          /* seconds, default 4000 */
	struct mta_sasl *sasl;         /* SASL passwords per relay host */
	size_t n_sasl;
	unsigned refcount;             /* private: use mta_settings_ref/free */
};

/* mta_settings_defaults - factory values; hostname from cfg_hostname (NULL or
 * "" = "localhost"). Never NULL; refcount 1. */
struct mta_settings *mta_settings_defaults(const char *cfg_hostname);
/* mta_settings_load - defaults overlaid with the "mta.*" settings in db (one
 * query). Unknown stored names are ignored (written by a newer version). NULL +
 * err (SG_E_STORE when the database is unavailable, SG_E_CONFIG naming the
 * setting when a stored value is invalid). Refcount 1. */
struct mta_settings *mta_settings_load(struct store *db, const char *cfg_hostname,
	struct sg_error *err);
/* mta_settings_ref - take another reference (thread-safe); returns s. */
struct mta_settings *mta_settings_ref(struct mta_settings *s);
/* mta_settings_free - drop a reference (thread-safe), free at zero; accepts
 * NULL, clears *sp. */
void mta_settings_free(struct mta_settings **sp);

/*
 * mta_settings_update - apply n assignments "NAME=VALUE" (names and values as
 * listed at the top, aliases accepted, "sasl.HOST[:PORT]=USER:PASSWORD") in
 * one transaction: either all are stored or none. Each value is validated and
 * stored in normalised form (lower-case domains, canonical CIDRs, sizes in
 * bytes, durations in seconds); an empty VALUE resets the setting to its
 * factory value (deletes the key) or removes the SASL entry. The result,
 * together with the stored settings not named, must be consistent
 * (after_filter_size >= before_filter_size, backoff_max >= backoff_min, no MX
 * flag on an IP relay host); concurrent updates are serialised so the check
 * sees committed values. Errors: SG_E_INVAL with a message naming the setting
 * (unknown name, bad value, missing '=', a name given twice, inconsistency),
 * SG_E_NOTFOUND when removing absent SASL credentials; store failures are
 * passed on.
 */
int mta_settings_update(struct store *db, const char *const *assignments, size_t n,
	struct sg_error *err);
/* mta_setting_set - mta_settings_update of the single assignment name=value
 * (value NULL or "" resets to the factory value). */
int mta_setting_set(struct store *db, const char *name, const char *value,
	struct sg_error *err);
/* mta_setting_is_known - name is one of the settings above (or an alias). */
bool mta_setting_is_known(const char *name);
/* mta_setting_check - validate value for name without storing (value NULL =
 * the factory value); 0 ok, -1 err (SG_E_INVAL naming the setting). */
int mta_setting_check(const char *name, const char *value, struct sg_error *err);

/* mta_sasl_set - store (or with password NULL remove) credentials for a host.
 * host is a host name or IP (no brackets), port 1..65535; username must not be
 * empty nor contain ':' or control characters; password at most 4096 bytes,
 * no line breaks. Removing an absent entry is SG_E_NOTFOUND. */
int mta_sasl_set(struct store *db, const char *host, unsigned port, const char *username,
	const char *password, struct sg_error *err);

/* mta_is_relay_domain - domain (case-insensitive, trailing dot ignored) is a
 * relay domain, or a subdomain of one when match_subdomains is set. */
bool mta_is_relay_domain(const struct mta_settings *s, const char *domain);
/* mta_is_my_network - addr (textual IPv4/IPv6, IPv4-mapped IPv6 matches IPv4
 * networks) is inside one of my_networks. Unparsable addresses are not. */
bool mta_is_my_network(const struct mta_settings *s, const char *addr);
/* mta_sasl_find - credentials for host:port (host case-insensitive), or NULL.
 * Borrowed. */
const struct mta_sasl *mta_sasl_find(const struct mta_settings *s, const char *host,
	unsigned port);

/* mta_cidr_parse - "10.0.0.0/8", "2001:db8::/32", "[::1]/128", "192.0.2.1";
 * host bits must be zero. 0 ok, -1 err (SG_E_INVAL). */
int mta_cidr_parse(const char *s, struct mta_cidr *c_r, struct sg_error *err);
/* mta_cidr_format - canonical text "a.b.c.d/n" or "x::y/n" into out. */
void mta_cidr_format(const struct mta_cidr *c, char *out, size_t outsz);
/* mta_cidr_contains - addr (textual) lies in c. */
bool mta_cidr_contains(const struct mta_cidr *c, const char *addr);

/* mta_settings_format - "name = value" lines, one per setting then one
 * "sasl.<host>:<port> = <username>:***" line per SASL entry; with
 * MTA_PRINT_JSON a JSON object (lists as arrays, yes/no as booleans, numbers
 * as integers, "sasl": [{host, port, username, password}]). Passwords are
 * "***" unless MTA_PRINT_REVEAL. Caller frees; never NULL. */
enum mta_print_flags {
	MTA_PRINT_TEXT = 0,
	MTA_PRINT_JSON = 1 << 0,
	MTA_PRINT_REVEAL = 1 << 1,  /* print SASL passwords */
};
char *mta_settings_format(const struct mta_settings *s, enum mta_print_flags flags);

#endif
