/*
 * lib_log.c - logging. Every line about a message starts with its mail ID
 * ("<id>: key=value, ..."), connection lines with "s=<sid>". Lines go to stderr
 * (foreground daemon, CLI) or syslog. Thread-safe: one write(2) per line.
 * Preserves errno. Untrusted strings must pass through sg_log_esc() first.
 */
#include "lib.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

static const char *log_progname = "sealgate";
static enum sg_log_dest log_dest = SG_LOGDEST_STDERR;
static _Atomic int log_level = SG_LOG_INFO;
static _Atomic unsigned log_trace_mask;

void sg_log_init(const char *progname, enum sg_log_dest dest, enum sg_log_level level)
{
	log_progname = progname;
	log_dest = dest;
	log_level = level;
	if (dest == SG_LOGDEST_SYSLOG)
		openlog(progname, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void sg_log_set_level(enum sg_log_level level)
{
	log_level = level;
}

void sg_log_set_trace(unsigned mask)
{
	log_trace_mask = mask;
}

bool sg_log_is_tracing(enum sg_trace t)
{
	return (log_trace_mask & t) != 0;
}

static const char *level_name(enum sg_log_level level)
{
	switch (level) {
	case SG_LOG_ERR:
		return "error";
	case SG_LOG_WARN:
		return "warning";
	case SG_LOG_INFO:
		return "info";
	default:
		return "debug";
	}
}

/* log_emit - format "prefix" + message and write the line in one call. */
static __attribute__((format(printf, 3, 0))) void log_emit(enum sg_log_level level, const char *prefix, const char *fmt,
	va_list ap)
{
	char line[2048];
	char ts[32];
	struct timespec now;
	struct tm tm;
	size_t n;
	int saved = errno;

	if ((int)level > log_level) {
		errno = saved;
		return;
	}
	if (log_dest == SG_LOGDEST_SYSLOG) {
		n = (size_t)snprintf(line, sizeof(line), "%s", prefix);
		if (n < sizeof(line))
			vsnprintf(line + n, sizeof(line) - n, fmt, ap);
		syslog((int)level, "%s", line);
		errno = saved;
		return;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	n = (size_t)snprintf(line, sizeof(line), "%s.%03ldZ %s[%d]: %s: %s", ts,
		now.tv_nsec / 1000000, log_progname, (int)getpid(), level_name(level),
		prefix);
	if (n < sizeof(line))
		n += (size_t)vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	(void)sg_write_all(STDERR_FILENO, line, n);
	errno = saved;
}

void sg_log(enum sg_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(level, "", fmt, ap);
	va_end(ap);
}

void sg_log_mail(enum sg_log_level level, const char *mail_id, const char *fmt, ...)
{
	char prefix[SG_MAIL_ID_LEN + 16];
	va_list ap;

	snprintf(prefix, sizeof(prefix), "%s: ", mail_id != NULL ? mail_id : "NOQUEUE");
	va_start(ap, fmt);
	log_emit(level, prefix, fmt, ap);
	va_end(ap);
}

void sg_log_sess(enum sg_log_level level, const char *sid, const char *fmt, ...)
{
	char prefix[64];
	va_list ap;

	snprintf(prefix, sizeof(prefix), "s=%s ", sid != NULL ? sid : "-");
	va_start(ap, fmt);
	log_emit(level, prefix, fmt, ap);
	va_end(ap);
}

void sg_trace(enum sg_trace t, const char *fmt, ...)
{
	va_list ap;

	if (!sg_log_is_tracing(t))
		return;
	va_start(ap, fmt);
	log_emit(SG_LOG_INFO, "trace: ", fmt, ap);
	va_end(ap);
}

char *sg_log_esc(char *out, size_t outsz, const char *in, size_t inlen)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	size_t i;

	if (outsz == 0)
		return out;
	for (i = 0; i < inlen; i++) {
		unsigned char c = (unsigned char)in[i];
		size_t need = (c >= 0x20 && c < 0x7f && c != '\\') ? 1 : 4;

		if (o + need + 4 > outsz) {
			if (outsz >= 4) {
				o = o + 4 > outsz ? outsz - 4 : o;
				memcpy(out + o, "...", 3);
				o += 3;
			}
			break;
		}
		if (need == 1) {
			out[o++] = (char)c;
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o < outsz ? o : outsz - 1] = '\0';
	return out;
}
