/*
 * ca_issue.c - end-user S/MIME certificates from the built-in CA (F-CA-3),
 * PKCS#12 export and hand-over by e-mail (F-CA-8).
 *
 * Called by the request handlers (ca_request.c), the CLI and the daemon's
 * request worker, in the caller's thread. The end-user key is generated here,
 * stored through pki_key and dropped; the certificate is signed by the CA's
 * intermediate key inside pki_key (ca_x509_sign_stored). Profile: RFC 8550/
 * RFC 5280 end entity - basicConstraints CA:FALSE, keyUsage digitalSignature
 * + keyEncipherment (RSA) or + keyAgreement (EC), EKU emailProtection, SAN
 * rfc822Name, SKI, AKI, optional CRL distribution point, random serial.
 */
#include "ca/ca_int.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

/* issue_params - resolve defaults from the settings */
static int issue_params(struct ca *ca, const struct ca_issue_opts *o, unsigned *days_r,
	enum ca_key_type *key_r, enum ca_digest *md_r, char **crl_dp_r, struct sg_error *err)
{
	int64_t v;
	char *s = NULL;
	bool add_dp = false;

	*crl_dp_r = NULL;
	if (o->days > CA_DAYS_MAX) {
		sg_error_set(err, SG_E_INVAL, "validity must be at most %u days", CA_DAYS_MAX);
		return -1;
	}
	if (o->days == 0) {
		if (ca_setting_int(ca, "validity_days", 1, CA_DAYS_MAX, &v, err) < 0)
			return -1;
		*days_r = (unsigned)v;
	} else {
		*days_r = o->days;
	}
	if (o->key >= 0) {
		*key_r = (enum ca_key_type)o->key;
	} else {
		if (ca_setting_get(ca, "key_type", &s, err) < 0)
			return -1;
		if (ca_key_type_parse(s, key_r) < 0)
			*key_r = CA_KEY_RSA2048;
		free(s);
		s = NULL;
	}
	if (o->md >= 0) {
		*md_r = (enum ca_digest)o->md;
	} else {
		if (ca_setting_get(ca, "signature_algorithm", &s, err) < 0)
			return -1;
		if (ca_digest_parse(s, md_r) < 0)
			*md_r = CA_MD_SHA256;
		free(s);
		s = NULL;
	}
	if (o->crl_dp != NULL) {
		if (o->crl_dp[0] != '\0')
			*crl_dp_r = sg_xstrdup(o->crl_dp);
		return 0;
	}
	if (ca_setting_flag(ca, "add_crl_dp", &add_dp, err) < 0)
		return -1;
	if (add_dp && ca_setting_get(ca, "crl_dp", crl_dp_r, err) < 0)
		return -1;
	return 0;
}

/* ee_build - the unsigned end-entity certificate */
static X509 *ee_build(const struct ca_subject *s, X509 *issuer, EVP_PKEY *key,
	unsigned days, const char *crl_dp, struct sg_error *err)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();
	bool ec = ca_key_is_ec(key);

	if (x == NULL || n == NULL || X509_set_version(x, X509_VERSION_3) != 1)
		goto ossl;
	if (ca_serial_set(x, err) < 0 || ca_name_build(n, s, err) < 0)
		goto fail;
	if (X509_set_subject_name(x, n) != 1 ||
		X509_set_issuer_name(x, X509_get_subject_name(issuer)) != 1 ||
		X509_gmtime_adj(X509_getm_notBefore(x), -300) == NULL ||
		X509_time_adj_ex(X509_getm_notAfter(x), (int)days, 0, NULL) == NULL ||
		X509_set_pubkey(x, key) != 1)
		goto ossl;
	/* never valid past the issuing CA */
	if (ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notAfter(issuer)) > 0 &&
		X509_set1_notAfter(x, X509_get0_notAfter(issuer)) != 1)
		goto ossl;
	if (ca_ext_add_conf(x, issuer, NID_basic_constraints, "critical,CA:FALSE", err) < 0 ||
		ca_ext_add_conf(x, issuer, NID_key_usage, ec ?
			"critical,digitalSignature,keyAgreement" :
			"critical,digitalSignature,keyEncipherment", err) < 0 ||
		ca_ext_add_conf(x, issuer, NID_ext_key_usage, "emailProtection", err) < 0 ||
		ca_ext_add_conf(x, issuer, NID_subject_key_identifier, "hash", err) < 0 ||
		ca_ext_add_conf(x, issuer, NID_authority_key_identifier, "keyid:always", err) < 0 ||
		ca_ext_add_email(x, s->email, err) < 0)
		goto fail;
	if (crl_dp != NULL && ca_ext_add_crl_dp(x, crl_dp, err) < 0)
		goto fail;
	X509_NAME_free(n);
	return x;
ossl:
	sg_error_set_openssl(err, SG_E_CRYPTO, "build certificate");
fail:
	X509_NAME_free(n);
	X509_free(x);
	return NULL;
}

int ca_issue(struct ca *ca, const struct ca_issue_opts *o, struct ca_issued *r,
	struct sg_error *err)
{
	struct ca_subject s = o->subject;
	struct ca_info info;
	struct pki_cert *inter = NULL;
	enum ca_key_type kt;
	enum ca_digest md;
	unsigned days;
	char *crl_dp = NULL, *serial = NULL, email_lc[CA_VALUE_MAX + 1];
	EVP_PKEY *key = NULL;
	X509 *tbs = NULL, *cert = NULL;
	BIGNUM *bn = NULL;
	int f, rc = -1;

	memset(r, 0, sizeof(*r));
	if (s.email == NULL || s.email[0] == '\0') {
		sg_error_set(err, SG_E_INVAL, "an email address is required");
		return -1;
	}
	if (ca_subject_check(&s, "certificate", err) < 0)
		return -1;
	ca_name_lower(s.email, email_lc, sizeof(email_lc));
	s.email = email_lc;
	if (s.cn == NULL || s.cn[0] == '\0')
		s.cn = s.email;
	f = ca_get(ca, o->ca_name, &info, err);
	if (f <= 0) {
		if (f == 0) {
			if (o->ca_name != NULL)
				sg_error_set(err, SG_E_NOTFOUND, "no CA named '%s'", o->ca_name);
			else
				sg_error_set(err, SG_E_NOTFOUND,
					"no default CA: create one with 'sealgate ca create'");
		}
		return -1;
	}
	if (issue_params(ca, o, &days, &kt, &md, &crl_dp, err) < 0)
		goto out;
	f = pki_cert_get(ca->pki, info.inter_thumbprint, &inter, err);
	if (f <= 0) {
		if (f == 0)
			sg_error_set(err, SG_E_NOTFOUND, "CA %s: intermediate certificate missing",
				info.name);
		goto out;
	}
	if (inter->not_after <= sg_now() || inter->not_before > sg_now()) {
		sg_error_set(err, SG_E_POLICY, "CA %s is not valid now (intermediate expired or "
			"not yet valid)", info.name);
		goto out;
	}
	key = o->key_pem != NULL ? ca_key_from_pem(o->key_pem, err) : ca_key_generate(kt, err);
	if (key == NULL)
		goto out;
	tbs = ee_build(&s, inter->x509, key, days, crl_dp, err);
	if (tbs == NULL ||
		ca_x509_sign_stored(ca, tbs, info.inter_thumbprint, inter->x509, md, &cert,
			err) < 0 ||
		ca_keypair_store(ca, key, cert, r->thumbprint, err) < 0)
		goto out;
	bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
	serial = bn != NULL ? BN_bn2hex(bn) : NULL;
	if (serial == NULL) {
		sg_error_set_openssl(err, SG_E_CRYPTO, "serial");
		goto out;
	}
	sg_strlcpy(r->serial, serial, sizeof(r->serial));
	sg_str_lower(r->serial);
	sg_strlcpy(r->ca_name, info.name, sizeof(r->ca_name));
	sg_log(SG_LOG_INFO, "ca: issued %.16s... serial=%s for %s by CA %s", r->thumbprint,
		r->serial, s.email, info.name);
	rc = 0;
out:
	OPENSSL_free(serial);
	BN_free(bn);
	X509_free(tbs);
	X509_free(cert);
	EVP_PKEY_free(key);
	pki_cert_free(&inter);
	free(crl_dp);
	return rc;
}

/* ---------------------------------------------------------------- PKCS#12 */

int ca_pfx_password_new(struct ca *ca, unsigned bytes, char **pw_r, struct sg_error *err)
{
	unsigned char rnd[64];
	unsigned char b64[96];
	int64_t v;
	int n, i, j;

	*pw_r = NULL;
	if (bytes == 0) {
		if (ca_setting_int(ca, "pfx_password_length", 8, 64, &v, err) < 0)
			return -1;
		bytes = (unsigned)v;
	}
	if (bytes > sizeof(rnd) || bytes < 8) {
		sg_error_set(err, SG_E_INVAL, "password length must be 8..64 bytes");
		return -1;
	}
	if (sg_random_bytes(rnd, bytes, err) < 0)
		return -1;
	n = EVP_EncodeBlock(b64, rnd, (int)bytes);
	OPENSSL_cleanse(rnd, sizeof(rnd));
	/* base64url without padding: no characters a mail client or SMS mangles */
	for (i = 0, j = 0; i < n; i++) {
		if (b64[i] == '=')
			continue;
		b64[j++] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
	}
	b64[j] = '\0';
	*pw_r = sg_xstrdup((char *)b64);
	OPENSSL_cleanse(b64, sizeof(b64));
	return 0;
}

/* cert_has_email - 1 when c carries addr (case-insensitive) */
static bool cert_has_email(const struct pki_cert *c, const char *addr)
{
	size_t i;

	for (i = 0; i < c->n_emails; i++)
		if (strcasecmp(c->emails[i], addr) == 0)
			return true;
	return false;
}

int ca_pfx_export(struct ca *ca, const char *const *thumbprints, size_t n,
	const char *password, const char *expect_email, unsigned flags,
	struct sg_buf *out, struct sg_error *err)
{
	struct pki_cert *c = NULL;
	char *enc = NULL;
	unsigned pf = PKI_P12_CHAIN;
	size_t i;
	int r;

	if (n == 0 || password == NULL) {
		sg_error_set(err, SG_E_INVAL, "certificates and a password are required");
		return -1;
	}
	for (i = 0; i < n; i++) {
		r = pki_cert_get(ca->pki, thumbprints[i], &c, err);
		if (r <= 0) {
			if (r == 0)
				sg_error_set(err, SG_E_NOTFOUND, "certificate %.16s... not found",
					thumbprints[i]);
			return -1;
		}
		if (c->is_ca || c->is_root) {
			sg_error_set(err, SG_E_POLICY,
				"certificate %.16s... is a CA certificate: never sent", thumbprints[i]);
			pki_cert_free(&c);
			return -1;
		}
		if (expect_email != NULL && !(flags & CA_PFX_ALLOW_MISMATCH) &&
			!cert_has_email(c, expect_email)) {
			sg_error_set(err, SG_E_POLICY, "address mismatch: certificate %.16s... is "
				"not for %s (allow mismatch to override)", thumbprints[i], expect_email);
			pki_cert_free(&c);
			return -1;
		}
		pki_cert_free(&c);
	}
	if (flags & CA_PFX_LEGACY) {
		pf |= PKI_P12_LEGACY;
	} else {
		if (ca_setting_get(ca, "pfx_encryption", &enc, err) < 0)
			return -1;
		if (enc != NULL && strcmp(enc, "legacy3des") == 0)
			pf |= PKI_P12_LEGACY;
		free(enc);
	}
	return pki_key_export_p12(ca->keys, thumbprints, n, password, pf, out, err);
}

int ca_send(struct ca *ca, const char *const *thumbprints, size_t n, const char *to,
	const char *password, unsigned flags, const struct ca_delivery *d,
	struct sg_error *err)
{
	struct sg_buf p12;
	char *from = NULL;
	int rc = -1;

	sg_buf_init(&p12, PKI_IMPORT_MAX);
	if (to == NULL || !sg_addr_is_valid(to)) {
		sg_error_set(err, SG_E_INVAL, "a valid recipient address is required");
		goto out;
	}
	if (ca_pfx_export(ca, thumbprints, n, password, to, flags & CA_PFX_ALLOW_MISMATCH,
		&p12, err) < 0)
		goto out;
	if (d == NULL || d->send_pfx == NULL) {
		sg_error_set(err, SG_E_CONFIG, "sending PFX mail is not available yet "
			"(needs the template module)");
		goto out;
	}
	if ((flags & CA_SEND_SMS) && d->sms_password == NULL) {
		sg_error_set(err, SG_E_CONFIG, "sending the password by SMS is not available");
		goto out;
	}
	if ((flags & CA_SEND_STORE_PASSWORD) && d->store_password == NULL) {
		sg_error_set(err, SG_E_CONFIG, "storing the password is not available");
		goto out;
	}
	if (ca_setting_get(ca, "ca_email", &from, err) < 0)
		goto out;
	if (from == NULL) {
		sg_error_set(err, SG_E_CONFIG, "CA setting ca_email must be set to send "
			"certificates");
		goto out;
	}
	if (d->send_pfx(d->arg, from, to, p12.data, p12.len, err) < 0)
		goto out;
	if ((flags & CA_SEND_SMS) && d->sms_password(d->arg, to, password, err) < 0)
		goto out;
	if ((flags & CA_SEND_STORE_PASSWORD) && d->store_password(d->arg, to, password, err) < 0)
		goto out;
	rc = 0;
out:
	if (p12.data != NULL)
		OPENSSL_cleanse(p12.data, p12.len);
	sg_buf_deinit(&p12);
	free(from);
	return rc;
}
