/* SPDX-License-Identifier: MIT */
#include <stdbool.h>

#include "registry-api/http-request-line.h"

#define METHOD_MAX 32

static bool is_method_char(char c) {
        return (c >= 'A' && c <= 'Z') || c == '-' || c == '_';
}

static bool is_target_char(char c) {
        return c >= 0x21 && c <= 0x7e;
}

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

/* The version part "HTTP/x.y" followed by CR LF or LF, from p (n bytes available). */
static RequestLineVerdict check_version(const char *p, size_t n) {
        static const char prefix[] = "HTTP/";
        size_t i = 0;
        for (; i < sizeof(prefix) - 1; i++) {
                if (i == n)
                        return REQUEST_LINE_INCOMPLETE;
                if (p[i] != prefix[i])
                        return REQUEST_LINE_MALFORMED;
        }
        /* DIGIT "." DIGIT */
        const char shape[] = { '0', '.', '0' };
        for (size_t k = 0; k < sizeof(shape); k++, i++) {
                if (i == n)
                        return REQUEST_LINE_INCOMPLETE;
                if (shape[k] == '.' ? p[i] != '.' : !is_digit(p[i]))
                        return REQUEST_LINE_MALFORMED;
        }
        if (i == n)
                return REQUEST_LINE_INCOMPLETE;
        if (p[i] == '\r') {
                if (++i == n)
                        return REQUEST_LINE_INCOMPLETE;
        }
        if (p[i] != '\n')
                return REQUEST_LINE_MALFORMED;
        /* p[5] is the major version, p[7] the minor */
        return p[5] == '1' && (p[7] == '0' || p[7] == '1') ? REQUEST_LINE_OK : REQUEST_LINE_VERSION;
}

RequestLineVerdict http_request_line_check(const char *buf, size_t len, size_t max) {
        size_t n = len < max ? len : max, i = 0;

        /* empty lines before the request line */
        while (i < n && (buf[i] == '\n' || (buf[i] == '\r' && (i + 1 == n || buf[i + 1] == '\n'))))
                i++;

        size_t m = 0;
        for (; i < n && is_method_char(buf[i]); i++)
                if (++m > METHOD_MAX)
                        return REQUEST_LINE_MALFORMED;
        if (i < n && (m == 0 || buf[i] != ' '))
                return REQUEST_LINE_MALFORMED;

        if (i < n) {
                i++; /* the space after the method */
                size_t t = 0;
                for (; i < n && is_target_char(buf[i]); i++)
                        t++;
                if (i < n && (t == 0 || buf[i] != ' '))
                        return REQUEST_LINE_MALFORMED;
                if (i < n) {
                        RequestLineVerdict v = check_version(buf + i + 1, n - i - 1);
                        if (v != REQUEST_LINE_INCOMPLETE)
                                return v;
                }
        }
        /* everything seen so far is a valid prefix */
        return len >= max ? REQUEST_LINE_TOO_LONG : REQUEST_LINE_INCOMPLETE;
}
