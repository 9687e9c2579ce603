/*
 * fuzz_ca_csv.c - libFuzzer target for the bulk request CSV parser (guide
 * App. G, src/ca/ca_csv.c): any bytes, including BOMs and UTF-16. Checks the
 * parser's own promises on success: row count within the limit, mandatory
 * values present, values at most CA_VALUE_MAX characters (bytes <= 4x), line
 * numbers increasing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sg_error err;
	struct ca_csv csv;
	size_t i;

	if (ca_csv_parse(data, size, 50, &csv, &err) < 0)
		return 0;
	if (csv.n == 0 || csv.n > 50)
		abort();
	for (i = 0; i < csv.n; i++) {
		const struct ca_csv_row *r = &csv.rows[i];

		if (r->email == NULL || r->cn == NULL || r->email[0] == '\0' || r->cn[0] == '\0' ||
			strlen(r->email) > 4 * CA_VALUE_MAX || strlen(r->cn) > 4 * CA_VALUE_MAX ||
			!sg_addr_is_valid(r->email))
			abort();
		if (i > 0 && r->line <= csv.rows[i - 1].line)
			abort();
	}
	ca_csv_free(&csv);
	return 0;
}
