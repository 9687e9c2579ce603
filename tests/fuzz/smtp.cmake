sg_add_fuzzer(fuzz_smtp_cmd DEPS sg_smtp)
