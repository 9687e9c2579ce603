/*
 * cli_mta.c - `sealgate mta show|set|sasl`: list and change the standalone
 * MTA settings (SPEC F-ADM-5, guide §3) stored in the database. The daemon
 * picks changes up within 30 s or on SIGHUP.
 *
 *   mta show [--json] [--reveal]     every setting; SASL passwords as ***
 *                                    unless --reveal
 *   mta set NAME=VALUE...            all or nothing; "NAME=" resets
 *   mta sasl set HOST[:PORT] USER [--password-file FILE]
 *                                    password from FILE or the first line of
 *                                    stdin (never from the command line)
 *   mta sasl delete HOST[:PORT]
 *   mta sasl HOST[:PORT] USER ...    short for "mta sasl set"
 *
 * Runs in the administrator's shell, single-threaded.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "mta/mta.h"

#define CLI_MTA_PASSWORD_MAX 4096

static int cli_mta_show(struct cli_ctx *ctx, int argc, char **argv)
{
	struct sg_error err;
	struct mta_settings *s;
	struct store *db;
	unsigned flags = MTA_PRINT_TEXT;
	char *out;

	(void)argv;
	if (argc != 1)
		return cli_usage("mta", "show");
	db = cli_db(ctx);
	if (db == NULL)
		return 1;
	s = mta_settings_load(db, ctx->cfg->hostname, &err);
	if (s == NULL)
		return cli_error("mta show: %s", err.msg);
	if (ctx->json)
		flags |= MTA_PRINT_JSON;
	if (ctx->reveal)
		flags |= MTA_PRINT_REVEAL;
	out = mta_settings_format(s, (enum mta_print_flags)flags);
	fputs(out, stdout);
	if (ctx->reveal)
		explicit_bzero(out, strlen(out));
	free(out);
	mta_settings_free(&s);
	return 0;
}

static int cli_mta_set(struct cli_ctx *ctx, int argc, char **argv)
{
	struct sg_error err;
	struct store *db;

	if (argc < 2)
		return cli_usage("mta", "set");
	db = cli_db(ctx);
	if (db == NULL)
		return 1;
	if (mta_settings_update(db, (const char *const *)(argv + 1), (size_t)(argc - 1),
		&err) < 0)
		return cli_error("mta set: %s (nothing was changed)", err.msg);
	return 0;
}

/* cli_mta_read_password - first line of stdin (prompt without echo on a tty). */
static char *cli_mta_read_password(struct sg_error *err)
{
	char buf[CLI_MTA_PASSWORD_MAX + 2];
	struct termios old, quiet;
	bool tty = isatty(STDIN_FILENO) == 1 && tcgetattr(STDIN_FILENO, &old) == 0;
	char *line;
	size_t len;

	if (tty) {
		fputs("password: ", stderr);
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	line = fgets(buf, sizeof(buf), stdin);
	if (tty) {
		(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	if (line == NULL) {
		sg_error_set(err, SG_E_INVAL, "no password on standard input");
		return NULL;
	}
	len = strcspn(buf, "\r\n");
	if (len == strlen(buf) && len > CLI_MTA_PASSWORD_MAX) {
		explicit_bzero(buf, sizeof(buf));
		sg_error_set(err, SG_E_INVAL, "password longer than %d bytes",
			CLI_MTA_PASSWORD_MAX);
		return NULL;
	}
	buf[len] = '\0';
	line = sg_xstrdup(buf);
	explicit_bzero(buf, sizeof(buf));
	return line;
}

static int cli_mta_sasl(struct cli_ctx *ctx, int argc, char **argv)
{
	struct sg_error err;
	struct sg_hostport hp;
	struct store *db;
	const char *pwfile = NULL;
	char *password = NULL;
	char *args[7];
	bool is_delete;
	int rc = 1;

	/* "mta sasl HOST USER ..." is short for "mta sasl set HOST USER ...". */
	if (argc >= 3 && argc <= 5 && strcmp(argv[1], "set") != 0 &&
		strcmp(argv[1], "delete") != 0) {
		int i;

		for (i = 0; i < argc; i++)
			args[i + 1] = argv[i];
		args[0] = argv[0];
		args[1] = "set";
		argv = args;
		argc++;
	}
	if (argc < 3)
		return cli_usage("mta", "sasl");
	is_delete = strcmp(argv[1], "delete") == 0;
	if (is_delete && argc != 3)
		return cli_usage("mta", "sasl");
	if (!is_delete) {
		if (strcmp(argv[1], "set") != 0 || (argc != 4 && argc != 6))
			return cli_usage("mta", "sasl");
		if (argc == 6) {
			if (strcmp(argv[4], "--password-file") != 0)
				return cli_usage("mta", "sasl");
			pwfile = argv[5];
		}
	}
	if (sg_hostport_parse(argv[2], 25, &hp, &err) < 0)
		return cli_error("mta sasl: %s", err.msg);
	if (!is_delete) {
		password = pwfile != NULL ? cli_read_secret_file(pwfile, &err) :
			cli_mta_read_password(&err);
		if (password == NULL)
			return cli_error("mta sasl: %s", err.msg);
	}
	db = cli_db(ctx);
	if (db == NULL)
		goto out;
	if (mta_sasl_set(db, hp.host, hp.port, is_delete ? NULL : argv[3], password,
		&err) < 0) {
		cli_error("mta sasl %s: %s", argv[1], err.msg);
		goto out;
	}
	rc = 0;
out:
	if (password != NULL) {
		explicit_bzero(password, strlen(password));
		free(password);
	}
	return rc;
}

static const struct cli_command cli_mta_commands[] = {
	{"mta", "show", cli_mta_show, "[--json] [--reveal]",
		"list the MTA settings (SASL passwords only with --reveal)"},
	{"mta", "set", cli_mta_set, "NAME=VALUE...",
		"change MTA settings, all or nothing (NAME= resets to the default)"},
	{"mta", "sasl", cli_mta_sasl,
		"set HOST[:PORT] USER [--password-file FILE] | delete HOST[:PORT]",
		"SASL credentials for a relay host (password from FILE or stdin)"},
};
CLI_REGISTER(cli_mta_commands)
