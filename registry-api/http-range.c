/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <strings.h>

#include "registry-api/http-range.h"

static bool is_blank(char c) {
        return c == ' ' || c == '\t';
}

static const char *skip_blanks(const char *p) {
        while (is_blank(*p))
                p++;
        return p;
}

/* 1*DIGIT. Returns the position after the digits or NULL if there are none. *overflow is set
 * (and *ret saturates at UINT64_MAX) when the value does not fit in 64 bits. */
static const char *parse_u64(const char *p, uint64_t *ret, bool *overflow) {
        uint64_t v = 0;
        bool of = false;
        const char *start = p;
        for (; *p >= '0' && *p <= '9'; p++) {
                unsigned d = (unsigned) (*p - '0');
                if (v > (UINT64_MAX - d) / 10) {
                        of = true;
                        v = UINT64_MAX;
                } else if (!of)
                        v = v * 10 + d;
        }
        if (p == start)
                return NULL;
        *ret = v;
        *overflow = of;
        return p;
}

int http_range_parse(const char *header, uint64_t size, uint64_t *start, uint64_t *end_inclusive) {
        if (!header)
                return -EINVAL;
        const char *p = skip_blanks(header);
        if (strncasecmp(p, "bytes", 5) != 0)
                return -EINVAL;
        p = skip_blanks(p + 5);
        if (*p != '=')
                return -EINVAL;
        p = skip_blanks(p + 1);

        uint64_t first = 0, last = 0;
        bool first_of = false, last_of = false, have_first = false, have_last = false;
        if (*p != '-') {
                p = parse_u64(p, &first, &first_of);
                if (!p)
                        return -EINVAL;
                have_first = true;
        }
        if (*p != '-')
                return -EINVAL;
        p++;
        if (*p >= '0' && *p <= '9') {
                p = parse_u64(p, &last, &last_of);
                have_last = true;
        }
        p = skip_blanks(p);
        if (*p != 0) /* a second range (",") or junk */
                return -EINVAL;
        if (!have_first && !have_last) /* "bytes=-" */
                return -EINVAL;

        if (!have_first) {
                /* suffix: the last `last` bytes; last_of means "more than there is" */
                if (last == 0 || size == 0)
                        return -ERANGE;
                *start = last >= size ? 0 : size - last;
                *end_inclusive = size - 1;
                return 0;
        }
        /* first > last makes the range invalid (not unsatisfiable); with both overflowing we
         * can not compare, but such a first is beyond any size anyway */
        if (have_last && !first_of && !last_of && last < first)
                return -EINVAL;
        if (have_last && first_of && !last_of)
                return -EINVAL;
        if (first_of || first >= size)
                return -ERANGE;
        *start = first;
        *end_inclusive = (!have_last || last_of || last >= size) ? size - 1 : last;
        return 0;
}

/* "<start>-<end>" exactly; returns the position after it or NULL */
static const char *parse_pair(const char *p, uint64_t *start, uint64_t *end) {
        bool of;
        p = parse_u64(p, start, &of);
        if (!p || of || *p != '-')
                return NULL;
        p = parse_u64(p + 1, end, &of);
        /* end == UINT64_MAX is refused too, so that callers may compute end + 1 */
        if (!p || of || *end < *start || *end == UINT64_MAX)
                return NULL;
        return p;
}

int http_content_range_parse(const char *header, uint64_t *start, uint64_t *end_inclusive) {
        if (!header)
                return -EINVAL;
        const char *p = skip_blanks(header);
        uint64_t s, e;

        if (strncasecmp(p, "bytes", 5) == 0) {
                p += 5;
                bool rfc_form;
                if (*p == '=') {
                        rfc_form = false;
                        p++;
                } else if (is_blank(*p)) {
                        rfc_form = true;
                        p = skip_blanks(p);
                } else
                        return -EINVAL;
                p = parse_pair(p, &s, &e);
                if (!p)
                        return -EINVAL;
                if (rfc_form) {
                        /* complete-length: a number or an asterisk */
                        if (*p != '/')
                                return -EINVAL;
                        p++;
                        if (*p == '*')
                                p++;
                        else {
                                uint64_t total;
                                bool of;
                                p = parse_u64(p, &total, &of);
                                if (!p || of || total <= e)
                                        return -EINVAL;
                        }
                }
        } else {
                p = parse_pair(p, &s, &e);
                if (!p)
                        return -EINVAL;
        }
        p = skip_blanks(p);
        if (*p != 0)
                return -EINVAL;
        *start = s;
        *end_inclusive = e;
        return 0;
}
