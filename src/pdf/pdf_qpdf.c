/*
 * pdf_qpdf.c - embed files into the rendered PDF and encrypt it with libqpdf's
 * job API (F-PDF-1 attachments, F-PDF-2 encryption), in process.
 *
 * The job is given as job JSON (built with jansson), not as an argv: file
 * names and passwords are then plain JSON strings, never parsed as options
 * or "@file" arguments. AES-256 uses the PDF 2.0 security handler R6,
 * AES-128 uses R4 (V4, AESV2). The owner password is 16 random bytes in hex.
 * qpdf's messages go to a per-job logger that keeps the first error for our
 * error text and discards the rest (nothing reaches stdout/stderr).
 * Runs in the rendering thread; each job has its own qpdf objects.
 * qpdf reads the embedded files through file providers while it writes.
 * Memory: the writer holds one stream at a time, but that one twice (libqpdf
 * 11.3 QPDFWriter::unparseObject buffers the stream data in a Pl_Buffer,
 * whose getBuffer() copies it before the buffer is freed); the peak is two
 * copies of the largest embedded file as stored (see pdf.h).
 */
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <qpdf/qpdfjob-c.h>
#include <qpdf/qpdflogger-c.h>

#include "pdf/pdf_int.h"

struct pdf_qpdf_log {
	char text[200];
};

/* pdf_qpdf_log_fn - keep the first line qpdf reports as a warning or error */
static int pdf_qpdf_log_fn(char const *data, size_t len, void *udata)
{
	struct pdf_qpdf_log *l = udata;
	char tmp[200];

	if (l->text[0] != '\0' || len == 0)
		return 0;
	sg_log_esc(tmp, sizeof(tmp), data, len);
	sg_strlcpy(l->text, tmp, sizeof(l->text));
	return 0;
}

/* pdf_qpdf_job - the job JSON (caller frees with free()) */
static char *pdf_qpdf_job(const char *in_path, const char *out_path,
	const struct pdf_embed *files, unsigned nfiles, const char *user_pw,
	const char *owner_pw, enum pdf_cipher cipher, unsigned flags)
{
	json_t *job = json_object(), *enc = json_object(), *att = json_array();
	char key[32];
	char *text;
	unsigned i;

	json_object_set_new(job, "inputFile", json_string(in_path));
	json_object_set_new(job, "outputFile", json_string(out_path));
	/* cairo's streams are deflated already and stay as they are; this only
	 * decides whether qpdf deflates the embedded files */
	json_object_set_new(job, "compressStreams",
		json_string(flags & PDF_QPDF_COMPRESS ? "y" : "n"));
	for (i = 0; i < nfiles; i++) {
		json_t *a = json_object();

		snprintf(key, sizeof(key), "f%05u", i + 1);
		json_object_set_new(a, "file", json_string(files[i].path));
		json_object_set_new(a, "key", json_string(key));
		json_object_set_new(a, "filename", json_string(files[i].name));
		json_object_set_new(a, "mimetype", json_string(files[i].mime_type));
		json_array_append_new(att, a);
	}
	if (nfiles > 0)
		json_object_set_new(job, "addAttachment", att);
	else
		json_decref(att);
	json_object_set_new(enc, "userPassword", json_string(user_pw));
	json_object_set_new(enc, "ownerPassword", json_string(owner_pw));
	if (cipher == PDF_CIPHER_AES128) {
		json_t *o = json_object();

		json_object_set_new(o, "useAes", json_string("y"));
		json_object_set_new(enc, "128bit", o);
	} else {
		json_object_set_new(enc, "256bit", json_object());
	}
	json_object_set_new(job, "encrypt", enc);
	text = json_dumps(job, JSON_COMPACT);
	json_decref(job);
	return text;
}

int pdf_qpdf_run(const char *in_path, const char *out_path, const struct pdf_embed *files,
	unsigned nfiles, const char *user_pw, enum pdf_cipher cipher, unsigned flags,
	struct sg_error *err)
{
	unsigned char rnd[16];
	char owner[33];
	struct pdf_qpdf_log log;
	qpdfjob_handle job = NULL;
	qpdflogger_handle logger = NULL;
	char *json = NULL;
	int rc = -1, qrc;

	memset(&log, 0, sizeof(log));
	if (sg_random_bytes(rnd, sizeof(rnd), err) < 0)
		return -1;
	sg_hex(owner, rnd, sizeof(rnd));
	json = pdf_qpdf_job(in_path, out_path, files, nfiles, user_pw, owner, cipher, flags);
	if (json == NULL) {
		/* only invalid UTF-8 in a string makes jansson fail here */
		sg_error_set(err, SG_E_INVAL, "pdf: cannot build the qpdf job (invalid UTF-8)");
		goto out;
	}
	job = qpdfjob_init();
	logger = qpdflogger_create();
	qpdflogger_set_info(logger, qpdf_log_dest_discard, NULL, NULL);
	qpdflogger_set_warn(logger, qpdf_log_dest_custom, pdf_qpdf_log_fn, &log);
	qpdflogger_set_error(logger, qpdf_log_dest_custom, pdf_qpdf_log_fn, &log);
	qpdfjob_set_logger(job, logger);
	if (qpdfjob_initialize_from_json(job, json) != 0) {
		sg_error_set(err, SG_E_INTERNAL, "pdf: qpdf job refused: %s", log.text);
		goto out;
	}
	qrc = qpdfjob_run(job);
	/* 3 = success with warnings (e.g. recovered input): the output is written */
	if (qrc != 0 && qrc != 3) {
		sg_error_set(err, SG_E_INTERNAL, "pdf: qpdf failed (%d): %s", qrc, log.text);
		goto out;
	}
	rc = 0;
out:
	if (json != NULL) {
		OPENSSL_cleanse(json, strlen(json));
		free(json);
	}
	OPENSSL_cleanse(owner, sizeof(owner));
	OPENSSL_cleanse(rnd, sizeof(rnd));
	if (job != NULL)
		qpdfjob_cleanup(&job);
	if (logger != NULL)
		qpdflogger_cleanup(&logger);
	return rc;
}
