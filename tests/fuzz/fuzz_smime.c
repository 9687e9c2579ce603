/*
 * fuzz_smime.c - libFuzzer target for the incoming S/MIME path: the input is
 * a whole message handed to smime_open (application/pkcs7-mime and
 * multipart/signed parsing through GMime and OpenSSL, CMS decoding,
 * decryption with a fixed test key, per-signer verification, the trust
 * callback, nesting up to the bound) with both flag settings.
 *
 * The keys below are TEST keys made for this target only (self-signed,
 * CN=Sealgate Fuzz ...); the seeds in corpus/smime/ are encrypted to and
 * signed with them.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "smime/smime.h"

static const char fuzz_rsa_key[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDPxGCH/uIsYNdz\n"
	"+oabGk1RtjtITGD4ndeSkqr81XT/3IhDVwSjuFLfiauNwGBUCInUgmsQnbojbS1f\n"
	"iC2Byn3iGo5thga7gPo1ellyRSQXybL9HIS9S2ZMmt7qdbrjLfauD7YsdchbI+VS\n"
	"zw95x5gkB006WuZYY8C7h9hsmDn9bEzdLoo+fXmFwRqi1P8lUoB6XGiBNhc3maNX\n"
	"3rmXPAvYZet1PGLLuAe6GP1Prxoo/u4aq2plyZr8NY2WNPkPnAOaoI9FEs/H4NlS\n"
	"VmHN76un71oyV2DgnLLTRaBRulEFJfRR+1Y5jZTjNWZpXWHESbVk58LA/S4f8Lxl\n"
	"P6Ft0zK9AgMBAAECggEAGENpOIiSFjerAZ7YuGVOcUP0UWGmE3Kvea0KLeOpubWh\n"
	"7idL4ejFONjFgZTdSwMCQaCHa1XYJon5+gWXtugUYmLSjkTQJXaPAc7LglZDvElw\n"
	"TzHU6JxVEo4liUD9dclo3PP1xORuZQJgphaLSp/+CvsVUELMUrc3i072fdwbLZaR\n"
	"jdqNDbtEJu7Kb5J/AqbQ5MDPVUDfqFo8Iqs/M4OkLxaNSivWgAtcaXKLMn+OVuyh\n"
	"fCWYQJ8wzL8zmRBM1GkJ7yGX7jcNDIGqq2ktvzbA9I/a9aYJg//KPb0rCG8rVwMB\n"
	"7z0H92hbb/BGgxciGxAKfYyPg+NmMOFCUuFX4U1H4QKBgQD/vSAxdjauxRqvO5Ao\n"
	"6nabnXMNV19JFgRQ8I//qzPrB8mbIcpBjtDK8bOdlWr3GoX5I4yQPRWy+r789WUo\n"
	"ck/SMe4EA3pk4dpdjEM5NW9caU/PMSbsokjxQogvd3uKl5gIA/AYacnlNAhjbdJQ\n"
	"wjsuKhnm5AnOUjcMKvYvG1Lj8QKBgQDP+rT916tCW83Tmc/uQgXWU7+Gi1ocejFP\n"
	"fykROzGH9pEpptiT3uZz7fGWFJYGX/iq0R69DSSUvLWN3Bpkd7SkVUvWZ76KUlvO\n"
	"LBCtl25Kr15ZxJjTTbhYXjxE9t7eTeZ2tSJUudyCq0nlc6tnojznNTdrwuWfyB/V\n"
	"hLRsdsEXjQKBgQCH2/E+VY63Sf7jGMF8+xIHmZ2FeOUl7oxcc3AMYucx9PEleM36\n"
	"BeTl64GANeCdZXnG4RvLhKgCbTMJL1SOKCw/fkbz2uUqstFO4TTVL435ifjcGUCU\n"
	"daJKiQ3QKal39xDNMUpbrdeT7BCIwc75GDZYUAVyo7KR6RtVW31tiRaAAQKBgQDA\n"
	"hxkdE5UaLNnw1CZELSIyMfzOlBmq2wLi0Jg3t1A2yO3AXQ+Ic4NqNg66G/x1kkoj\n"
	"9so5v/zpI3f+Bo74CkhTCBLYO9mLOop55RjbWZ9jy8vP1cqTcRMB2tp4DQBrUjnS\n"
	"EgPh4txaqi4SFm3J1coDTqQrQZRHwX6Wre5Hqfc90QKBgEjCLTT3GB+eGgtG5COx\n"
	"hUzO7c/C1w776rBhdjOhRx2x/qmnIXMdjOFrAyPfH1jjz9Kk3+0tQH6i5NUMaiyp\n"
	"ZnFCF0+GgaqmzY1yJ0djjhYUMufN9hp6k4AwQVS5ChoUYa0x5JL+SntvcBjPFjKB\n"
	"6Z++I/n8JOeS3oqj6vA6o7Sh\n"
	"-----END PRIVATE KEY-----\n";
static const char fuzz_rsa_cert[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIIDajCCAlKgAwIBAgIUWQlTHebTC1SfePda47c26yM/Ii0wDQYJKoZIhvcNAQEL\n"
	"BQAwPTEaMBgGA1UEAwwRU2VhbGdhdGUgRnV6eiBSU0ExHzAdBgkqhkiG9w0BCQEW\n"
	"EGZ1enpAZXhhbXBsZS5vcmcwIBcNMjYxMTMwMTkwNTIxWhgPMjEyNjExMDYxOTA1\n"
	"MjFaMD0xGjAYBgNVBAMMEVNlYWxnYXRlIEZ1enogUlNBMR8wHQYJKoZIhvcNAQkB\n"
	"FhBmdXp6QGV4YW1wbGUub3JnMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKC\n"
	"AQEAz8Rgh/7iLGDXc/qGmxpNUbY7SExg+J3XkpKq/NV0/9yIQ1cEo7hS34mrjcBg\n"
	"VAiJ1IJrEJ26I20tX4gtgcp94hqObYYGu4D6NXpZckUkF8my/RyEvUtmTJre6nW6\n"
	"4y32rg+2LHXIWyPlUs8PeceYJAdNOlrmWGPAu4fYbJg5/WxM3S6KPn15hcEaotT/\n"
	"JVKAelxogTYXN5mjV965lzwL2GXrdTxiy7gHuhj9T68aKP7uGqtqZcma/DWNljT5\n"
	"D5wDmqCPRRLPx+DZUlZhze+rp+9aMldg4Jyy00WgUbpRBSX0UftWOY2U4zVmaV1h\n"
	"xEm1ZOfCwP0uH/C8ZT+hbdMyvQIDAQABo2AwXjAdBgNVHQ4EFgQU8wTYiOpljtjX\n"
	"jl7+BFQRdhfSWrIwHwYDVR0jBBgwFoAU8wTYiOpljtjXjl7+BFQRdhfSWrIwDwYD\n"
	"VR0TAQH/BAUwAwEB/zALBgNVHQ8EBAMCBaAwDQYJKoZIhvcNAQELBQADggEBAL98\n"
	"Uy9FExRwwGu8X7y+LuWtrtjbmeMvcWvGYGmAKzc+KU8S1cpbTgebEqA/CHXQ6mCi\n"
	"HXWc8Axqzis7qhD9x7oZYcM6rmkamN7icHyKgoLg369sBGaFK/N1M2D3at5jFy1W\n"
	"mol40PzaulntRLtkA4hIHZFAEyP01LWgcpRIV6orb7ZPejEACX5O6rw8XM4sVaK0\n"
	"yFFgRzslp0o9u8WgSClckpVnTuEG3hAE5X1dxvMOPFt5syhoXcEr6gBjVWYEk7Rl\n"
	"w8/4zqpQC9PgYFqEpE4gwV+zRB3it6FIaD1PGZ2a/udDpO6AC8xJsyPtZMtskCSN\n"
	"CZBWTj2JegYSStJN4ek=\n"
	"-----END CERTIFICATE-----\n";
static const char fuzz_ec_key[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgElmvALRhUuEqfJ/a\n"
	"ZoFzh1p+pAp4Dj1qlGBL5AbjLnyhRANCAARtL59muV0AcdH1oejIFpcyLn3Cb2tJ\n"
	"TkfCxi6/k9BKmDvFyMUogJ0VYv/kdfeIbJPPwihzhzVACPFT2DsG0CUf\n"
	"-----END PRIVATE KEY-----\n";
static const char fuzz_ec_cert[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIIBmTCCAUCgAwIBAgIUY3eQNOttBiXY0Oskr4Xi4RznLGkwCgYIKoZIzj0EAwIw\n"
	"GzEZMBcGA1UEAwwQU2VhbGdhdGUgRnV6eiBFQzAgFw0yNjExMzAxOTA1MjFaGA8y\n"
	"MTI2MTEwNjE5MDUyMVowGzEZMBcGA1UEAwwQU2VhbGdhdGUgRnV6eiBFQzBZMBMG\n"
	"ByqGSM49AgEGCCqGSM49AwEHA0IABG0vn2a5XQBx0fWh6MgWlzIufcJva0lOR8LG\n"
	"Lr+T0EqYO8XIxSiAnRVi/+R194hsk8/CKHOHNUAI8VPYOwbQJR+jYDBeMB0GA1Ud\n"
	"DgQWBBSDzs50SfLO5wllbdjIa3wG0A282DAfBgNVHSMEGDAWgBSDzs50SfLO5wll\n"
	"bdjIa3wG0A282DAPBgNVHRMBAf8EBTADAQH/MAsGA1UdDwQEAwIDiDAKBggqhkjO\n"
	"PQQDAgNHADBEAiAHvUkt897ChgYsZHh+1KSZSpur/Rv2L7Cc6NsDI8P+SAIgL81k\n"
	"jwvOGqQQuShy6Zqwv+7KmKn/dMVjaiB1J+AE1Gs=\n"
	"-----END CERTIFICATE-----\n";

struct fkey {
	X509 *cert;
	EVP_PKEY *pkey;
};

static struct fkey fkeys[2];
static X509_STORE *fstore;

static void
fkey_load(struct fkey *k, const char *cert, const char *key)
{
	BIO *b = BIO_new_mem_buf(cert, -1);

	k->cert = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	b = BIO_new_mem_buf(key, -1);
	k->pkey = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	if (k->cert == NULL || k->pkey == NULL)
		abort();   /* the embedded test keys are broken: not hostile input */
}

static int
fdecrypt(void *arg, CMS_ContentInfo *cms, const struct smime_rid *rids, size_t n, BIO *out,
	size_t *used_r, struct sg_error *err)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < 2; j++) {
			if (!smime_rid_match(&rids[i], fkeys[j].cert))
				continue;
			if (!CMS_decrypt(cms, fkeys[j].pkey, fkeys[j].cert, NULL, out, 0)) {
				sg_error_set_openssl(err, SG_E_CRYPTO, "decrypt");
				return -1;
			}
			*used_r = i;
			return 1;
		}
	}
	return 0;
}

static int
ftrust(void *arg, X509 *signer, STACK_OF(X509) *certs, int64_t at, char *info,
	size_t infolen, struct sg_error *err)
{
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int ok;

	if (ctx == NULL || !X509_STORE_CTX_init(ctx, fstore, signer, certs)) {
		X509_STORE_CTX_free(ctx);
		sg_error_set(err, SG_E_NOMEM, "trust");
		return -1;
	}
	if (at > 0)
		X509_STORE_CTX_set_time(ctx, 0, (time_t)at);
	ok = X509_verify_cert(ctx) > 0;
	if (!ok)
		snprintf(info, infolen, "%s",
			X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
	X509_STORE_CTX_free(ctx);
	return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int initialised;
	STACK_OF(X509) *extra;

	if (!initialised) {
		g_mime_init();
		fkey_load(&fkeys[0], fuzz_rsa_cert, fuzz_rsa_key);
		fkey_load(&fkeys[1], fuzz_ec_cert, fuzz_ec_key);
		fstore = X509_STORE_new();
		X509_STORE_add_cert(fstore, fkeys[0].cert);
		X509_STORE_add_cert(fstore, fkeys[1].cert);
		initialised = 1;
	}
	extra = sk_X509_new_null();
	sk_X509_push(extra, fkeys[1].cert);
	for (unsigned flags = 0; flags < 2; flags++) {
		struct smime_open_opts o = {
			.decrypt = fdecrypt, .trust = ftrust, .extra_certs = extra,
			.flags = flags ? SMIME_OPEN_REMOVE_SIGNATURE : 0, .max_output = 8u << 20,
		};
		struct smime_result res = { 0 };
		struct sg_error err;
		struct sg_buf out;

		sg_buf_init(&out, 8u << 20);
		(void)smime_open(data, size, &o, &res, &out, &err);
		(void)smime_is_smime(data, size);
		smime_result_deinit(&res);
		sg_buf_deinit(&out);
	}
	sk_X509_free(extra);
	ERR_clear_error();
	return 0;
}
