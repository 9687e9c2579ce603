/*
 * fuzz_mpa_smime.c - libFuzzer target for the incoming S/MIME path of the
 * pipeline: the input is a whole message from an external sender to three
 * internal recipients (non-strict, strict, strict with remove-signature and
 * security info) run through mpa_process_stream - method decrypt
 * (mpa_smime_in.c): spoofed X-Sealgate-Info fields removed, smime_open with
 * the key-store decrypt callback (strict rules) and the pki trust callback,
 * signer certificates collected into the store, X-Sealgate-Info fields
 * built from the message's certificates, subject tags. Every output is read
 * back.
 *
 * The key below is a TEST key made for this target only (self-signed,
 * CN=Sealgate Fuzz MPA, dave@example.com; also the root); the seeds in
 * corpus/mpa_smime/ are encrypted to and signed with it. The store is a
 * throw-away SQLite database created once.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <gmime/gmime.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>

#include "mpa/mpa.h"
#include "mta/mta.h"
#include "pki/pki.h"
#include "pki/pki_key.h"
#include "policy/policy.h"

static const char fz_key[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCcZpaidSHt8YRN\n"
	"vlS5dJ5dsn7Ovf83Eeim52ORa0rsD+aazYKK2uMmhHDfrhJmrxogSesx4oXqPUhq\n"
	"ybqKltBYzV15m6TL24aoTixiS6+JfqOQU1N7iiypoLVZ80EDz5JFi8+OxCde0gry\n"
	"ALpQsCFPWsVmVrDyi7pvjL8ohcLw50dMgidpg2QCKDUKRfHGQqTZ4jsKMNcEBsTo\n"
	"yN33lB9waPzBWmhp7w6uKwtincvRqQc9wom/Hoi3cU0hJ/5RT6Epl+nFhXuE27Qk\n"
	"X2fG9fQbDvn9f0B51ZyvVeoLWsGdzikIXQ+kCw9lk9OJQ4UaZonekKf5B+kWMZ4Q\n"
	"XWgYCFobAgMBAAECggEAPZhvmeK8rpvQKdgcQP/LQQaDx4NvaG5erKDzhzl0w9yN\n"
	"SwlF8M686BX/6DADojoy9WV3Qem/KN3iz9/L3joAKwESX8rrD7hQ46cJ9tps8x8T\n"
	"ZstSVRS5e0LGOXtCbzBIIKir4UOiZ8ccNWwQ9KcxLzIGDUR2Isfh8H3DaT+o4zvs\n"
	"0MKdQXBAouqi1276gPNW9igEHukCJB35Z1DQICe39U5SQodCE7v/1NP8BNU3HQyx\n"
	"61k3TnCcGrV7eNji2VNp9OA+1ZlQbZorxzUoftYqW8VDNEOHq8+17sJJvedD2IEs\n"
	"bNEifr2BgQlDSZ95Wt9MJBm+F9J7Vzw/6tQIe8GaEQKBgQDWJiuG1TDgazLUNMOC\n"
	"baKVmdcevF9b0Pyo78IO+wVeYg1Buyacy9YDlPXMAxbbOfai0fvN+BoFNiRnUPKx\n"
	"7S42jNAWSTHBDtzWGdCxiBaAR/LuOgWkvtmUG8Y7uhEQq73vNYQWhk7NQl4EtlDd\n"
	"ORztQKWl27j8I3GPQ090SXLHkQKBgQC690fxXpqcRmc1rZ1GXmyS5IvFFj0vZDbI\n"
	"H9NNeg6oAwOI/LcUbxQkmv9kVMIg7/kPveogPWKaxUVHTvAEINJE+Vjvkj7PYnwp\n"
	"zK1LHJA4006FawFRbY6uI+1OWsyxCDsdKhRleLAAbrEdodRCzDghYZcYp0xEDMPx\n"
	"v8Tsu3So6wKBgQCNOq0YBf9u8aOa6ZVKri08RjHl9ktZTTFj5ILxyECZJ0cg42Eq\n"
	"pQ9mW1XjDuKC/+4VITDUfFwEtdk6Pdtg1k/U7/bHy8vBS6D+nhXRDzPvtAOVcrSI\n"
	"Gsl5cPvCJgrdGLZxTLTo+fh8S9mfd/FKhED8gtb71DViK6nX1odO5KWK0QKBgCYe\n"
	"mMp7kWZfbFejaDeatORWOLEcUalB83FmG7zmL+rNgoEBlYpTA3ZbK8sXBOWWR9+P\n"
	"xxZ/rYUEx5U8YO9WiciKVjmyRaAe4lXbZ1GzJyyO2KmXIZOqlLaomI+rL6TAmtzd\n"
	"YX821hugdfgmsJJV9PPJY/cg1Qni2GiHwuzJY4W1AoGAbna22bKqgHEULE+llrBW\n"
	"ofzET6ZaKQAgeoPI0xejpgRoCGI5wLEyz3ghpodvKHU9YKGLGn+L1zPOVOO54Yg+\n"
	"3ZegUaE9/6rBtyUxR4x4niIW0lUdcP07UQ1VaNdTXCj5I2LHDWXFuNvYzlOw530N\n"
	"XYfCPonE4r6Pi1ZGu5C1AV0=\n"
	"-----END PRIVATE KEY-----\n";
static const char fz_cert[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIIDoTCCAomgAwIBAgIUIuExR7nbMDrXyJmIyFGKoXxZFlkwDQYJKoZIhvcNAQEL\n"
	"BQAwPTEaMBgGA1UEAwwRU2VhbGdhdGUgRnV6eiBNUEExHzAdBgkqhkiG9w0BCQEW\n"
	"EGRhdmVAZXhhbXBsZS5jb20wIBcNMjYxMTMwMTkzODM4WhgPMjEyNjExMDYxOTM4\n"
	"MzhaMD0xGjAYBgNVBAMMEVNlYWxnYXRlIEZ1enogTVBBMR8wHQYJKoZIhvcNAQkB\n"
	"FhBkYXZlQGV4YW1wbGUuY29tMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKC\n"
	"AQEAnGaWonUh7fGETb5UuXSeXbJ+zr3/NxHopudjkWtK7A/mms2CitrjJoRw364S\n"
	"Zq8aIEnrMeKF6j1Iasm6ipbQWM1deZuky9uGqE4sYkuviX6jkFNTe4osqaC1WfNB\n"
	"A8+SRYvPjsQnXtIK8gC6ULAhT1rFZlaw8ou6b4y/KIXC8OdHTIInaYNkAig1CkXx\n"
	"xkKk2eI7CjDXBAbE6Mjd95QfcGj8wVpoae8OrisLYp3L0akHPcKJvx6It3FNISf+\n"
	"UU+hKZfpxYV7hNu0JF9nxvX0Gw75/X9AedWcr1XqC1rBnc4pCF0PpAsPZZPTiUOF\n"
	"GmaJ3pCn+QfpFjGeEF1oGAhaGwIDAQABo4GWMIGTMB0GA1UdDgQWBBTrh9nTi3Oo\n"
	"gwzKj2VbXXT9s1zwGTAfBgNVHSMEGDAWgBTrh9nTi3OogwzKj2VbXXT9s1zwGTAP\n"
	"BgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwICpDATBgNVHSUEDDAKBggrBgEF\n"
	"BQcDBDAbBgNVHREEFDASgRBkYXZlQGV4YW1wbGUuY29tMA0GCSqGSIb3DQEBCwUA\n"
	"A4IBAQB5OtdHsfbVE8A5+YkTWJcOTVX5J/rQZ8qY8/oZ8wWyuW6OerGWUjGxC3ur\n"
	"BCpvKLPliv6TE6rnYRuEt+R/jI9p9qaIhC/b8F8gZYNoR01zQsM/+DXkBdCl7rvS\n"
	"DT67AgIf27juTzxsQvc9cP630jyi1kAHKfAX/AXdHWw4ug7Yud8Dt36Ff4Wz9NkY\n"
	"ZSXQu+Q1jD/83tIrWzEUAMi1d8m82vRb2gLMnLMTFpzZKQnNHrfXWXs4g0JH5crX\n"
	"Y5oj28iYYZC5rpJuBT7CmIIG1g3mVMfCKHNAKd5Ih1hasB/m1aybR+cMg0t/TR7W\n"
	"M6Pc7D30QJp8fv87m3mXuCXg0u3n\n"
	"-----END CERTIFICATE-----\n";

static struct {
	char dir[64];
	struct sg_config *cfg;
	struct store *db;
	struct mpa *mpa;
} fz;

static void fz_cleanup(void)
{
	static const char *const files[] = {"db", "db-wal", "db-shm", "pki.kek"};
	char p[128];
	size_t i;

	mpa_free(&fz.mpa);
	store_close(&fz.db);
	sg_config_free(&fz.cfg);
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", fz.dir, files[i]);
		unlink(p);
	}
	rmdir(fz.dir);
}

/* fz_import - the test key and certificate into the store (key via an
 * in-memory PKCS#12, certificate also as a root) */
static void fz_import(struct pki *pki, struct pki_keys *keys)
{
	BIO *b = BIO_new_mem_buf(fz_cert, -1);
	X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	EVP_PKEY *k;
	PKCS12 *p12;
	unsigned char *der = NULL;
	struct pki_cert *c;
	struct sg_error err;
	int len;

	BIO_free(b);
	b = BIO_new_mem_buf(fz_key, -1);
	k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	if (x == NULL || k == NULL)
		abort();   /* the embedded test key is broken: not hostile input */
	p12 = PKCS12_create("fz", NULL, k, x, NULL, 0, 0, 0, 0, 0);
	len = p12 != NULL ? i2d_PKCS12(p12, &der) : -1;
	if (len <= 0 || pki_key_import_p12(keys, der, (size_t)len, "fz", NULL, NULL, &err) < 0)
		abort();
	c = pki_cert_from_x509(x, &err);
	if (c == NULL || pki_cert_add(pki, c, PKI_ADD_ROOT, &err) < 0)
		abort();
	pki_cert_free(&c);
	OPENSSL_free(der);
	PKCS12_free(p12);
	EVP_PKEY_free(k);
	X509_free(x);
}

static void fz_set(struct policy *pol, enum policy_kind kind, const char *name,
	const char *prop, const char *value)
{
	struct policy_change ch = {prop, value};
	struct sg_error err;

	if (policy_object_apply(pol, kind, name, &ch, 1, &err) < 0)
		abort();
}

static void fz_init(void)
{
	struct mpa_conf conf;
	struct sg_error err;
	struct policy *pol;
	struct pki *pki;
	struct pki_keys *keys;
	char url[128];

	g_mime_init();
	sg_log_set_level(SG_LOG_ERR);
	snprintf(fz.dir, sizeof(fz.dir), "/tmp/sg-fuzz-mpa-XXXXXX");
	if (mkdtemp(fz.dir) == NULL)
		abort();
	snprintf(url, sizeof(url), "sqlite:%s/db", fz.dir);
	fz.db = store_open(url, &err);
	if (fz.db == NULL || store_migrate(fz.db, &err) < 0 ||
	    mta_setting_set(fz.db, "relay_domains", "example.com", &err) < 0)
		abort();
	pki = pki_open(fz.db, &err);
	keys = pki != NULL ? pki_keys_open(pki, fz.dir, &err) : NULL;
	if (keys == NULL)
		abort();
	fz_import(pki, keys);
	pki_keys_close(&keys);
	pki_close(&pki);
	pol = policy_new(fz.db, NULL);
	fz_set(pol, POLICY_KIND_DOMAIN, "example.com", "locality", "internal");
	fz_set(pol, POLICY_KIND_USER, "strict@example.com", "smime_strict", "true");
	fz_set(pol, POLICY_KIND_USER, "dave@example.com", "smime_strict", "true");
	fz_set(pol, POLICY_KIND_USER, "dave@example.com", "smime_remove_signature", "true");
	fz_set(pol, POLICY_KIND_USER, "dave@example.com", "add_security_info", "true");
	policy_free(&pol);
	fz.cfg = sg_config_defaults();
	free(fz.cfg->data_dir);
	fz.cfg->data_dir = strdup(fz.dir);
	memset(&conf, 0, sizeof(conf));
	conf.cfg = fz.cfg;
	conf.db = fz.db;
	fz.mpa = mpa_new(&conf, &err);
	if (fz.mpa == NULL)
		abort();
	atexit(fz_cleanup);
}

/* fz_output - read every output back */
static int fz_output(void *arg, const struct mpa_output *out, struct sg_error *err)
{
	char buf[4096];
	uint64_t off = 0;

	(void)arg;
	(void)err;
	while (off < out->len) {
		size_t n = out->len - off < sizeof(buf) ? (size_t)(out->len - off) : sizeof(buf);

		if (pread(out->fd, buf, n, (off_t)(out->offset + off)) != (ssize_t)n)
			abort();   /* an output we cannot read back is our bug */
		off += n;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int initialised;
	struct spool_env env;
	struct sg_error err;
	size_t off = 0;
	int fd;

	if (!initialised) {
		fz_init();
		initialised = 1;
	}
	fd = memfd_create("fuzz-mpa", MFD_CLOEXEC);
	if (fd < 0)
		abort();
	while (off < size) {
		ssize_t w = write(fd, data + off, size - off);

		if (w <= 0)
			abort();
		off += (size_t)w;
	}
	memset(&env, 0, sizeof(env));
	env.sender = strdup("bob@ext.org");
	env.arrival = 1700000000;
	spool_env_add_rcpt(&env, "dave@example.com", NULL, 0);
	spool_env_add_rcpt(&env, "strict@example.com", NULL, 0);
	spool_env_add_rcpt(&env, "carol@example.com", NULL, 0);
	(void)mpa_process_stream(fz.mpa, &env, fd, fz_output, NULL, &err);
	spool_env_free_fields(&env);
	close(fd);
	return 0;
}
