/* fuzz_config.c - libFuzzer target for the configuration file parser. */
#include <stdint.h>
#include <stdlib.h>

#include "lib/lib.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sg_error err;
	struct sg_config *c;

	c = sg_config_load_string("fuzz.conf", (const char *)data, size, &err);
	sg_config_free(&c);
	return 0;
}
