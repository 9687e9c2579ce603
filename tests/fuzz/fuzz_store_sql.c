/* fuzz_store_sql.c - libFuzzer target for the store's SQL text rewriting:
 * '?' -> $n for PostgreSQL (quotes, comments) and the portable {{TOKENS}}. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/lib.h"
#include "store/store_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sg_error err;
	char *sql = malloc(size + 1);
	char *out;
	int n = -1;

	if (sql == NULL)
		return 0;
	memcpy(sql, data, size);
	sql[size] = '\0';
	out = store_pg_rewrite(sql, &n, &err);
	/* no placeholder rewritten: the text is unchanged */
	if (out != NULL && n == 0 && strcmp(out, sql) != 0)
		abort();
	free(out);
	out = store_sql_tokens(sql, STORE_SQLITE, &err);
	free(out);
	out = store_sql_tokens(sql, STORE_POSTGRES, &err);
	free(out);
	free(sql);
	return 0;
}
