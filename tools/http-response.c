/* SPDX-License-Identifier: MIT */
/* The HTTP/1.x response parser of `plura reg`'s client (http-client.c). */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http-response.h"

/* The end of the line starting at p (its CR LF, or a lone LF), or NULL. */
static const char *line_end(const char *p, const char *end) {
        const char *nl = memchr(p, '\n', (size_t) (end - p));
        return nl;
}

static size_t trimmed_len(const char *p, const char *nl) {
        const char *e = nl;
        while (e > p && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
                e--;
        return (size_t) (e - p);
}

static bool header_is(const char *p, size_t len, const char *name, const char **ret_value, size_t *ret_vlen) {
        size_t nl = strlen(name);
        if (len <= nl || p[nl] != ':' || strncasecmp(p, name, nl) != 0)
                return false;
        const char *v = p + nl + 1, *e = p + len;
        while (v < e && (*v == ' ' || *v == '\t'))
                v++;
        *ret_value = v;
        *ret_vlen = (size_t) (e - v);
        return true;
}

static int parse_decimal(const char *p, size_t len, uint64_t *ret) {
        uint64_t v = 0;
        if (len == 0 || len > 18)
                return -EBADMSG;
        for (size_t i = 0; i < len; i++) {
                if (p[i] < '0' || p[i] > '9')
                        return -EBADMSG;
                v = v * 10 + (uint64_t) (p[i] - '0');
        }
        *ret = v;
        return 0;
}

/* Chunked body from p to end into a new buffer (RFC 9112 7.1; extensions and trailers ignored).
 * -EAGAIN: it ends before the last chunk (more may come; at the end of the input it is -EBADMSG). */
static int dechunk(const char *p, const char *end, char **ret, size_t *ret_len) {
        size_t cap = (size_t) (end - p) + 1, n = 0;
        char *out = malloc(cap);
        if (!out)
                return -ENOMEM;
        for (;;) {
                const char *nl = line_end(p, end);
                if (!nl)
                        goto more;
                uint64_t size = 0;
                size_t digits = 0;
                for (const char *q = p; q < nl && *q != ';' && *q != '\r' && *q != ' ' && *q != '\t'; q++) {
                        int d = *q >= '0' && *q <= '9' ? *q - '0' : *q >= 'a' && *q <= 'f' ? *q - 'a' + 10 : *q >= 'A' && *q <= 'F' ? *q - 'A' + 10 : -1;
                        if (d < 0 || ++digits > 15)
                                goto bad;
                        size = size << 4 | (uint64_t) d;
                }
                if (digits == 0)
                        goto bad;
                p = nl + 1;
                if (size == 0)
                        break; /* trailers may follow: not needed */
                if ((uint64_t) (end - p) < size + 1)
                        goto more;
                memcpy(out + n, p, size);
                n += size;
                p += size;
                /* CRLF (or LF) after the data */
                if (*p == '\r')
                        p++;
                if (p >= end)
                        goto more;
                if (*p != '\n')
                        goto bad;
                p++;
        }
        out[n] = 0;
        *ret = out;
        *ret_len = n;
        return 0;
more:
        free(out);
        return -EAGAIN;
bad:
        free(out);
        return -EBADMSG;
}

int http_response_parse(const char *buf, size_t len, bool at_eof, long *ret_status, char **ret_body, size_t *ret_body_len) {
        const char *p = buf, *end = buf + len;
        int more = at_eof ? -EBADMSG : -EAGAIN; /* for input that ends too early */
        if (!buf)
                return more;
        for (;;) {
                /* status line: HTTP/1.x SP 3DIGIT [SP reason] */
                const char *nl = line_end(p, end);
                if (!nl) {
                        /* a prefix of a status line may still become one */
                        size_t have = (size_t) (end - p);
                        return have < 9 && memcmp(p, "HTTP/1.1 ", have) != 0 && memcmp(p, "HTTP/1.0 ", have) != 0 ? -EBADMSG : more;
                }
                if (nl - p < 12 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') || p[8] != ' ')
                        return -EBADMSG;
                if (p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9' ||
                    (nl - p > 12 && p[12] != ' ' && p[12] != '\r'))
                        return -EBADMSG;
                long status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
                p = nl + 1;

                bool chunked = false, have_length = false;
                uint64_t length = 0;
                for (;;) {
                        nl = line_end(p, end);
                        if (!nl)
                                return more; /* headers not terminated */
                        size_t l = trimmed_len(p, nl);
                        if (l == 0) {
                                p = nl + 1;
                                break;
                        }
                        const char *v;
                        size_t vl;
                        if (header_is(p, l, "Content-Length", &v, &vl)) {
                                uint64_t x;
                                if (parse_decimal(v, vl, &x) < 0 || (have_length && x != length))
                                        return -EBADMSG;
                                length = x;
                                have_length = true;
                        } else if (header_is(p, l, "Transfer-Encoding", &v, &vl)) {
                                if (vl != 7 || strncasecmp(v, "chunked", 7) != 0)
                                        return -EBADMSG; /* no other coding is asked for */
                                chunked = true;
                        } else if (memchr(p, ':', l) == NULL)
                                return -EBADMSG;
                        p = nl + 1;
                }
                if (status < 200)
                        continue; /* 1xx interim response: the real one follows */

                char *body;
                size_t bl;
                if (chunked) {
                        int r = dechunk(p, end, &body, &bl);
                        if (r == -EAGAIN)
                                return more;
                        if (r < 0)
                                return r;
                } else {
                        bl = (size_t) (end - p);
                        if (have_length) {
                                if (length > bl)
                                        return more; /* truncated */
                                bl = (size_t) length;
                        } else if (!at_eof)
                                return -EAGAIN; /* the body ends where the connection does */
                        body = malloc(bl + 1);
                        if (!body)
                                return -ENOMEM;
                        memcpy(body, p, bl);
                        body[bl] = 0;
                }
                *ret_status = status;
                *ret_body = body;
                *ret_body_len = bl;
                return 0;
        }
}
