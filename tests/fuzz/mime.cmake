sg_add_fuzzer(fuzz_mime DEPS sg_mime)
