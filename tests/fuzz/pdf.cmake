sg_add_fuzzer(fuzz_pdf DEPS sg_pdf sg_mime)
