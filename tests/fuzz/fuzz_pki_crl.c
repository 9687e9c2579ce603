/* fuzz_pki_crl.c - libFuzzer target for CRL import (DER or PEM): parse,
 * issuer/signature lookup, entries into the store. */
#include <stdint.h>

#include "fuzz_pki_db.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sg_error err;

	pki_crl_import(fz_pki(), data, size, "fuzz", NULL, &err);
	return 0;
}
