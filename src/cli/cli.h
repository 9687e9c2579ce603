/*
 * cli.h - the `sealgate` command's dispatcher (SPEC §13). Each cli_<area>.c
 * registers its commands with CLI_REGISTER(table); cli_main.c parses the
 * global options, finds the command and runs it. Commands print listings as
 * text or, with --json, as JSON on stdout; errors go to stderr and the exit
 * status is non-zero (1 = failure, 2 = usage).
 *
 * Private to the sealgate executable (not a module API).
 */
#ifndef SG_CLI_H
#define SG_CLI_H

#include "lib/lib.h"
#include "store/store.h"

struct cli_ctx {
	const char *config_path;  /* -c FILE or $SEALGATE_CONF, or NULL */
	struct sg_config *cfg;    /* loaded configuration (defaults if no file) */
	bool json;                /* --json given */
	bool reveal;              /* --reveal given (show secrets) */
	struct store *db;         /* opened lazily by cli_db() */
};

typedef int cli_fn(struct cli_ctx *ctx, int argc, char **argv);

struct cli_command {
	const char *group;  /* "user", "queue", "init", ... */
	const char *name;   /* "add", "list", ... or NULL for a one-word command */
	cli_fn *fn;         /* argv[0] is the sub-command (or group) name */
	const char *usage;  /* "EMAIL [NAME=VALUE...]" */
	const char *help;   /* one line */
};

void cli_register(const struct cli_command *cmds, size_t n);

#define CLI_REGISTER(table) \
	static void __attribute__((constructor)) cli_register_##table(void) \
	{ \
		cli_register(table, sizeof(table) / sizeof(table[0])); \
	}

/* cli_db - the store, opened (and migrated) on first use; NULL + message on stderr. */
struct store *cli_db(struct cli_ctx *ctx);
/* cli_error - print "sealgate: <msg>" to stderr; returns 1 (the exit status). */
int cli_error(const char *fmt, ...) SG_PRINTF(1, 2);
/* cli_usage - print the command's usage line to stderr; returns 2. */
int cli_usage(const char *group, const char *name);
/* cli_read_secret_file - first line of a password file (no newline), <= 4 KiB. */
char *cli_read_secret_file(const char *path, struct sg_error *err);

#endif
