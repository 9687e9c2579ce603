/*
 * pdf_init.c - one-time set-up of the libraries the PDF module uses, called
 * from main() before worker threads start (STYLE §7: library initialisation
 * belongs to the program, this only bundles what the program must call).
 */
#include <cairo.h>
#include <fontconfig/fontconfig.h>
#include <libxml/parser.h>
#include <pango/pangocairo.h>

#include "pdf/pdf_int.h"

/* pdf_font_count - number of installed fonts supporting lang ("" = any) */
static int pdf_font_count(const char *lang)
{
	FcPattern *pat = FcPatternCreate();
	FcObjectSet *os = FcObjectSetBuild(FC_FAMILY, (char *)0);
	FcFontSet *fs;
	int n = 0;

	if (lang[0] != '\0')
		FcPatternAddString(pat, FC_LANG, (const FcChar8 *)lang);
	fs = FcFontList(NULL, pat, os);
	if (fs != NULL) {
		n = fs->nfont;
		FcFontSetDestroy(fs);
	}
	FcObjectSetDestroy(os);
	FcPatternDestroy(pat);
	return n;
}

int pdf_init(struct sg_error *err)
{
	xmlInitParser();
	if (!FcInit() || pdf_font_count("") == 0) {
		sg_error_set(err, SG_E_CONFIG, "pdf: fontconfig finds no font: install "
			"fonts-dejavu-core (and a CJK font such as fonts-wqy-microhei)");
		return -1;
	}
	if (pdf_font_count("zh-cn") == 0 || pdf_font_count("ja") == 0)
		sg_log(SG_LOG_WARN, "pdf: no CJK font installed: Chinese/Japanese text in "
			"PDFs would show as boxes (install fonts-wqy-microhei or fonts-noto-cjk)");
	if (pdf_font_count("ar") == 0 || pdf_font_count("he") == 0)
		sg_log(SG_LOG_WARN, "pdf: no Arabic/Hebrew font installed "
			"(install fonts-dejavu-core)");
	return 0;
}

void pdf_deinit(void)
{
	/* this thread's pango font map holds fontconfig patterns; the font
	 * maps of other threads were released when they exited */
	pango_cairo_font_map_set_default(NULL);
	cairo_debug_reset_static_data();
	FcFini();
	xmlCleanupParser();
}
