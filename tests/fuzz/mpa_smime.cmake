sg_add_fuzzer(fuzz_mpa_smime DEPS sg_mpa)
