# pki import formats: certificates (DER/PEM/p7b), PKCS#12, CRLs.
sg_add_fuzzer(fuzz_pki_certs DEPS sg_pki)
sg_add_fuzzer(fuzz_pki_p12 DEPS sg_pki)
sg_add_fuzzer(fuzz_pki_crl DEPS sg_pki)
