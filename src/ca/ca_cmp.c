/*
 * ca_cmp.c - the CMP request handler (F-CA-4, RFC 4210/9480) over OpenSSL's
 * OSSL_CMP client.
 */
#include "ca/ca_int.h"

int ca_cmp_request(struct ca *ca, const struct ca_request *rq, struct ca_issued *r,
	struct sg_error *err)
{
	sg_error_set(err, SG_E_CONFIG, "CMP handler not built yet");
	return -1;
}
