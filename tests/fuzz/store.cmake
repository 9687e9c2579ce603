sg_add_fuzzer(fuzz_store_sql DEPS sg_store)
