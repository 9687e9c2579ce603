/*
 * test_smime_budget.c - smime_open_fd takes what OpenSSL's decoder holds
 * from the process's memory budget (sg_budget, lib_budget.c) and gives all
 * of it back on every path: decrypted and verified, no key for the
 * recipient, damaged base64, clear-signed. A leak would stall the daemon's
 * workers for good, so each case checks that nothing is held afterwards.
 * A clear-signed message takes only its signature part: the signed content
 * streams from the file into the verification.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <gmime/gmime.h>

#include "lib/lib.h"
#include "smime/smime_int.h"
#include "smime_test.h"

/* mem_fd - a temporary file holding data */
static int mem_fd(const void *data, size_t len)
{
	struct sg_error e;
	int fd = smime_tmp_fd(&e);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	return fd;
}

struct made {
	int sig, enc;
	uint64_t slen, elen;
};

/* make - alice signs the sample message, it is encrypted to bob */
static void make(struct made *m)
{
	struct tkey *alice = tkey_get("alice", "rsa2048"), *bob = tkey_get("bob", "rsa2048");
	struct smime_signer signer = tsigner(alice);
	STACK_OF(X509) *rc = sk_X509_new_null();
	struct sg_error e;
	size_t len = 0;
	char *msg = tmsg_sample(1, &len);
	int in = mem_fd(msg, len);

	sk_X509_push(rc, bob->cert);
	m->sig = smime_tmp_fd(&e);
	m->enc = smime_tmp_fd(&e);
	assert_true(m->sig >= 0 && m->enc >= 0);
	assert_int_equal(smime_sign_fd(in, len, &signer, NULL, m->sig, &m->slen, &e), 0);
	assert_int_equal(smime_encrypt_fd(m->sig, m->slen, rc, NULL, m->enc, &m->elen, &e), 0);
	sk_X509_free(rc);
	close(in);
	free(msg);
}

/* open_with - smime_open_fd of bytes [0, len) of fd with the given keys;
 * its return value; res is cleaned up. */
static int open_with(int fd, uint64_t len, struct tkey **keys, size_t nkeys)
{
	struct tkeyring ring = { keys, nkeys, 0 };
	X509_STORE *store = tstore();
	struct smime_open_opts oo = { 0 };
	struct smime_result res = { 0 };
	struct sg_error e;
	uint64_t olen = 0;
	int out = smime_tmp_fd(&e), rc;

	assert_true(out >= 0);
	oo.decrypt = tdecrypt_cb;
	oo.decrypt_arg = &ring;
	oo.trust = ttrust_cb;
	oo.trust_arg = store;
	oo.max_output = len + (1u << 20);
	rc = smime_open_fd(fd, len, &oo, &res, out, &olen, &e);
	smime_result_deinit(&res);
	X509_STORE_free(store);
	close(out);
	return rc;
}

/* held_after - the peak taken during the call before, and that nothing is
 * held now (a reset sets the peak to what is held) */
static uint64_t peak_and_none_held(void)
{
	uint64_t peak = sg_budget_peak(true);

	assert_int_equal(sg_budget_peak(false), 0);
	return peak;
}

static void test_budget_taken_and_given_back(void **state)
{
	struct tkey *bob = tkey_get("bob", "rsa2048"), *carl = tkey_get("carl", "rsa2048");
	struct tkey *keys[] = { bob };
	struct tkey *wrong[] = { carl };
	struct made m;
	char *raw;
	uint64_t peak;
	int bad;

	(void)state;
	make(&m);
	sg_budget_set(64 * 1024);
	(void)sg_budget_peak(true);

	/* decrypted and verified: two layers, each held while decoded */
	assert_true(open_with(m.enc, m.elen, keys, 1) >= 0);
	peak = peak_and_none_held();
	assert_true(peak >= m.elen);          /* about 3 x the encrypted body */

	/* no key for this recipient: the layer stays, the budget comes back */
	assert_true(open_with(m.enc, m.elen, wrong, 1) >= 0);
	assert_true(peak_and_none_held() > 0);

	/* clear-signed only */
	assert_true(open_with(m.sig, m.slen, keys, 1) >= 0);
	assert_true(peak_and_none_held() > 0);

	/* damaged base64 in the middle: an error after the budget was taken */
	raw = sg_xmalloc(m.elen);
	assert_int_equal(pread(m.enc, raw, m.elen, 0), (ssize_t)m.elen);
	memset(raw + m.elen / 2, '*', 64);
	bad = mem_fd(raw, m.elen);
	assert_int_equal(open_with(bad, m.elen, keys, 1), -1);
	assert_true(peak_and_none_held() > 0);

	close(bad);
	free(raw);
	close(m.sig);
	close(m.enc);
	sg_budget_set(0);
}

/* A 1 MB clear-signed message: verified (valid, trusted, the content back
 * byte for byte), and what was held is about the signature part, not the
 * message. */
static void test_clear_signed_streams(void **state)
{
	struct tkey *alice = tkey_get("alice", "rsa2048");
	struct smime_signer signer = tsigner(alice);
	struct tkeyring ring = { NULL, 0, 0 };
	X509_STORE *store = tstore();
	struct smime_open_opts oo = { 0 };
	struct smime_result res = { 0 };
	struct sg_error e;
	const char *head = "From: a@example.org\r\nTo: b@example.net\r\nSubject: big\r\n"
		"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
		"Content-Transfer-Encoding: 8bit\r\n\r\n";
	size_t hlen = strlen(head), len = hlen + 1024 * 1024, i;
	char *msg = sg_xmalloc(len), *back;
	uint64_t slen = 0, olen = 0, peak;
	int in, sig = smime_tmp_fd(&e), out = smime_tmp_fd(&e);

	(void)state;
	memcpy(msg, head, hlen);
	for (i = hlen; i < len; i++)   /* 8-bit lines of 64 bytes, CRLF */
		msg[i] = (i - hlen) % 66 == 64 ? '\r' : (i - hlen) % 66 == 65 ? '\n' :
			(char)(0xc0 + (i % 31));
	in = mem_fd(msg, len);
	assert_int_equal(smime_sign_fd(in, len, &signer, NULL, sig, &slen, &e), 0);
	sg_budget_set(16u << 20);
	(void)sg_budget_peak(true);
	oo.decrypt = tdecrypt_cb;
	oo.decrypt_arg = &ring;
	oo.trust = ttrust_cb;
	oo.trust_arg = store;
	oo.flags = SMIME_OPEN_REMOVE_SIGNATURE;
	oo.max_output = slen + (1u << 20);
	assert_int_equal(smime_open_fd(sig, slen, &oo, &res, out, &olen, &e), 0);
	peak = peak_and_none_held();
	assert_int_equal(res.n_layers, 1);
	assert_int_equal(res.layers[0].n_signers, 1);
	assert_int_equal(res.layers[0].signers[0].status, SMIME_SIG_VALID);
	assert_int_equal(res.layers[0].signers[0].trusted, 1);
	assert_true(peak > 0 && peak < 64 * 1024);
	/* the body comes back byte for byte */
	back = sg_xmalloc(olen);
	assert_int_equal(pread(out, back, olen, 0), (ssize_t)olen);
	assert_true(olen > len - hlen);
	assert_memory_equal(back + olen - (len - hlen), msg + hlen, len - hlen);
	free(back);
	smime_result_deinit(&res);
	X509_STORE_free(store);
	free(msg);
	close(in);
	close(sig);
	close(out);
	sg_budget_set(0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_budget_taken_and_given_back),
		cmocka_unit_test(test_clear_signed_streams),
	};
	int rc;

	g_mime_init();
	tenv_init();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	tenv_cleanup();
	return rc;
}
