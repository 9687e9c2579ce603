sg_add_fuzzer(fuzz_template DEPS sg_template)
