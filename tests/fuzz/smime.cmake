sg_add_fuzzer(fuzz_smime DEPS sg_smime)
