/* fuzz_pki_certs.c - libFuzzer target for certificate import: DER, PEM (one or
 * many blocks), PKCS#7 .p7b (DER or PEM), all through pki_certs_parse. */
#include <stdint.h>
#include <stdlib.h>

#include "pki/pki.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pki_cert_list l = {0};
	struct sg_error err;

	pki_certs_parse(data, size, &l, &err);
	pki_cert_list_free(&l);
	return 0;
}
