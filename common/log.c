/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

static LogLevel max_level = LOG_LEVEL_INFO;

void log_set_max_level(LogLevel l) {
        max_level = l;
}

LogLevel log_get_max_level(void) {
        return max_level;
}

int log_level_from_string(const char *s) {
        static const char *const names[_LOG_LEVEL_MAX] = { "debug", "info", "warning", "error" };
        for (int i = 0; i < _LOG_LEVEL_MAX; i++)
                if (streq(names[i], s))
                        return i;
        return -EINVAL;
}

int log_internal(LogLevel level, int error, const char *file, int line, const char *fmt, ...) {
        static const char *const prefix[_LOG_LEVEL_MAX] = { "debug", "info", "warning", "error" };
        int e = error < 0 ? -error : error;

        if (level < max_level)
                return -e;

        /* Expand %m ourselves with the passed error, not errno. */
        char buf[2048];
        size_t o = 0;
        for (const char *p = fmt; *p && o < sizeof(buf) - 1; p++) {
                if (p[0] == '%' && p[1] == 'm') {
                        const char *m = strerror(e);
                        size_t l = strlen(m);
                        if (l > sizeof(buf) - 1 - o)
                                l = sizeof(buf) - 1 - o;
                        memcpy(buf + o, m, l);
                        o += l;
                        p++;
                } else if (p[0] == '%' && p[1] == '%') {
                        if (o + 2 < sizeof(buf)) {
                                buf[o++] = '%';
                                buf[o++] = '%';
                        }
                        p++;
                } else
                        buf[o++] = *p;
        }
        buf[o] = 0;

        char msg[4096];
        va_list ap;
        va_start(ap, fmt);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        vsnprintf(msg, sizeof(msg), buf, ap);
#pragma GCC diagnostic pop
        va_end(ap);

        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        char tbuf[32];
        strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%S", &tm);

        if (max_level <= LOG_LEVEL_DEBUG)
                fprintf(stderr, "%s.%03ldZ %s %s:%d: %s\n", tbuf, ts.tv_nsec / 1000000, prefix[level], file, line, msg);
        else
                fprintf(stderr, "%s.%03ldZ %s %s\n", tbuf, ts.tv_nsec / 1000000, prefix[level], msg);
        return -e;
}
