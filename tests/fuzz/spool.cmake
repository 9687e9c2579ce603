sg_add_fuzzer(fuzz_spool DEPS sg_spool)
