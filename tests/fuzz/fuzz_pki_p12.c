/* fuzz_pki_p12.c - libFuzzer target for PKCS#12 import (password "fuzz"):
 * MAC check, legacy fallback, key/certificate matching, storing. */
#include <stdint.h>

#include "fuzz_pki_db.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sg_error err;

	fz_pki();
	pki_key_import_p12(fz.keys, data, size, "fuzz", NULL, NULL, &err);
	return 0;
}
