# ca: the bulk certificate request CSV parser (guide App. G).
sg_add_fuzzer(fuzz_ca_csv DEPS sg_ca)
