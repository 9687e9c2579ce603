sg_add_fuzzer(fuzz_config DEPS sg_lib)
