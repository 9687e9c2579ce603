/*
 * cli_main.c - entry point of `sealgate`: global options (-c FILE, --json,
 * --reveal), command lookup in the registered tables, `help`, `init`.
 * Runs in the administrator's shell, single-threaded; works with the daemon
 * running or stopped (all state is in the database and the spool).
 */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>
#include <openssl/crypto.h>

#define CLI_MAX_COMMANDS 256

static const struct cli_command *cli_cmds[CLI_MAX_COMMANDS];
static size_t cli_ncmds;

void cli_register(const struct cli_command *cmds, size_t n)
{
	size_t i;

	for (i = 0; i < n && cli_ncmds < CLI_MAX_COMMANDS; i++)
		cli_cmds[cli_ncmds++] = &cmds[i];
}

int cli_error(const char *fmt, ...)
{
	va_list ap;

	fputs("sealgate: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

int cli_usage(const char *group, const char *name)
{
	size_t i;

	for (i = 0; i < cli_ncmds; i++) {
		const struct cli_command *c = cli_cmds[i];

		if (strcmp(c->group, group) != 0)
			continue;
		if (name != NULL && c->name != NULL && strcmp(c->name, name) != 0)
			continue;
		fprintf(stderr, "usage: sealgate %s%s%s %s\n", c->group, c->name ? " " : "",
			c->name ? c->name : "", c->usage ? c->usage : "");
	}
	return 2;
}

struct store *cli_db(struct cli_ctx *ctx)
{
	struct sg_error err;

	if (ctx->db != NULL)
		return ctx->db;
	ctx->db = store_open(ctx->cfg->database, &err);
	if (ctx->db == NULL) {
		cli_error("database: %s", err.msg);
		return NULL;
	}
	if (store_migrate(ctx->db, &err) < 0) {
		cli_error("database: %s", err.msg);
		store_close(&ctx->db);
		return NULL;
	}
	return ctx->db;
}

char *cli_read_secret_file(const char *path, struct sg_error *err)
{
	char *data = NULL;
	size_t len = 0;

	if (sg_file_read(path, 4096, &data, &len, err) < 0)
		return NULL;
	data[strcspn(data, "\r\n")] = '\0';
	return data;
}

static int cli_help(struct cli_ctx *ctx, int argc, char **argv)
{
	size_t i;

	(void)ctx;
	(void)argc;
	(void)argv;
	printf("usage: sealgate [-c FILE] [--json] [--reveal] COMMAND ...\n\ncommands:\n");
	for (i = 0; i < cli_ncmds; i++) {
		const struct cli_command *c = cli_cmds[i];
		char head[96];

		snprintf(head, sizeof(head), "%s%s%s %s", c->group, c->name ? " " : "",
			c->name ? c->name : "", c->usage ? c->usage : "");
		printf("  %-52s %s\n", head, c->help ? c->help : "");
	}
	return 0;
}

static int cli_init(struct cli_ctx *ctx, int argc, char **argv)
{
	struct sg_error err;
	struct store *db;

	(void)argc;
	(void)argv;
	if (sg_mkdir_p(ctx->cfg->data_dir, 0700, &err) < 0)
		return cli_error("init: %s", err.msg);
	db = cli_db(ctx);
	if (db == NULL)
		return 1;
	if (store_init(db, &err) < 0)
		return cli_error("init: %s", err.msg);
	printf("initialised %s (schema version %d)\n", ctx->cfg->database,
		store_schema_version(db, &err));
	return 0;
}

static const struct cli_command cli_main_commands[] = {
	{"help", NULL, cli_help, "", "list the commands"},
	{"init", NULL, cli_init, "", "create the database and the server secret (idempotent)"},
};
CLI_REGISTER(cli_main_commands)

/* cli_find - the command for argv (group [name]); sets *shift to words used. */
static const struct cli_command *cli_find(int argc, char **argv, int *shift)
{
	size_t i;
	bool group_known = false;

	for (i = 0; i < cli_ncmds; i++) {
		const struct cli_command *c = cli_cmds[i];

		if (strcmp(c->group, argv[0]) != 0)
			continue;
		group_known = true;
		if (c->name == NULL) {
			*shift = 0;
			return c;
		}
		if (argc > 1 && strcmp(c->name, argv[1]) == 0) {
			*shift = 1;
			return c;
		}
	}
	*shift = group_known ? -1 : -2;
	return NULL;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"json", no_argument, NULL, 'j'},
		{"reveal", no_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct cli_ctx ctx;
	struct sg_error err;
	const struct cli_command *cmd;
	int opt, shift, rc, i;

	memset(&ctx, 0, sizeof(ctx));
	ctx.config_path = getenv("SEALGATE_CONF");
	/* Global options come before the command; "+" stops at the first word. */
	while ((opt = getopt_long(argc, argv, "+c:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			ctx.config_path = optarg;
			break;
		case 'j':
			ctx.json = true;
			break;
		case 'r':
			ctx.reveal = true;
			break;
		case 'h':
			return cli_help(&ctx, 0, NULL);
		default:
			return 2;
		}
	}
	if (optind >= argc) {
		cli_help(&ctx, 0, NULL);
		return 2;
	}
	/* --json / --reveal may also appear anywhere after the command. */
	for (i = optind; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0 || strcmp(argv[i], "--reveal") == 0) {
			if (argv[i][2] == 'j')
				ctx.json = true;
			else
				ctx.reveal = true;
			memmove(&argv[i], &argv[i + 1], (size_t)(argc - i) * sizeof(char *));
			argc--;
			i--;
		}
	}
	sg_log_init("sealgate", SG_LOGDEST_STDERR, SG_LOG_WARN);
	if (ctx.config_path != NULL) {
		ctx.cfg = sg_config_load(ctx.config_path, &err);
		if (ctx.cfg == NULL)
			return cli_error("%s", err.msg);
	} else {
		ctx.cfg = sg_config_defaults();
	}
	cmd = cli_find(argc - optind, argv + optind, &shift);
	if (cmd == NULL) {
		if (shift == -1)
			rc = cli_usage(argv[optind], NULL);
		else
			rc = cli_error("unknown command '%s' (try: sealgate help)", argv[optind]);
		sg_config_free(&ctx.cfg);
		return rc;
	}
	OPENSSL_init_crypto(0, NULL);
	g_mime_init();
	rc = cmd->fn(&ctx, argc - optind - shift, argv + optind + shift);
	store_close(&ctx.db);
	sg_config_free(&ctx.cfg);
	g_mime_shutdown();
	return rc;
}
