/*
 * fuzz_pdf.c - libFuzzer target for the PDF renderer as the MPA calls it:
 * the bytes are a message (parsed from a memfd), pdf_message_write classifies
 * the parts, decodes attachments into work files, lays out text and HTML
 * (libxml2 SAX) with pango, and lets qpdf embed and encrypt. Pages are
 * capped low so that one input stays fast. Errors are fine (SG_E_LIMIT for
 * too many parts/pages); a crash, a leak or an internal error is not. The
 * PDF goes to /dev/null.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mime/mime.h"
#include "pdf/pdf.h"

static char work[] = "/tmp/sg-fuzz-pdf.XXXXXX";

/* fuzz_cleanup - the work dir is empty after every input: remove it; free
 * the font caches (else LeakSanitizer reports them at exit) */
static void fuzz_cleanup(void)
{
	rmdir(work);
	pdf_deinit();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int initialised;
	struct pdf_options o;
	struct sg_error err;
	struct mime_msg *m;
	int fd, out;

	if (!initialised) {
		struct sg_error e0;

		g_mime_init();
		if (pdf_init(&e0) < 0 || mkdtemp(work) == NULL)
			abort();
		atexit(fuzz_cleanup);
		initialised = 1;
	}
	fd = memfd_create("fuzz_pdf", MFD_CLOEXEC);
	if (fd < 0)
		abort();
	if (size > 0 && sg_write_all(fd, data, size) < 0)
		abort();
	m = mime_msg_parse_fd(fd, 0, size, &err);
	close(fd);
	if (m == NULL)
		abort();
	out = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (out < 0)
		abort();
	memset(&o, 0, sizeof(o));
	o.user_password = "fuzz-password";
	o.tmp_dir = work;
	o.max_pages = 30;
	o.max_size = 8u << 20;
	o.reply_link = "https://portal.example/reply?r=a%40b&s=c%40d&e=0&h=00";
	if (pdf_message_write(m, &o, out, NULL, &err) < 0 &&
	    (err.code == SG_E_INTERNAL || err.code == SG_E_INVAL))
		abort(); /* hostile input must not reach cairo/qpdf failures */
	close(out);
	mime_msg_free(&m);
	return 0;
}
