/* SPDX-License-Identifier: MIT */
#pragma once

/* Pure check of the start of an HTTP/1.x request as it arrives on a new connection, before
 * libmicrohttpd sees it (registry-api/listener.c). No I/O, no allocation.
 *
 * libmicrohttpd 0.9.75 closes a connection whose request line is malformed without an answer,
 * and waits for a line end that a TLS ClientHello never sends; clients that probe a plain-HTTP
 * port with TLS (the docker CLI does) then see EOF instead of the HTTP answer that makes them
 * fall back. So the listener looks at the first line itself and answers 400 when it is not
 * HTTP. */

#include <stddef.h>

typedef enum RequestLineVerdict {
        REQUEST_LINE_OK,          /* a complete, well-formed "METHOD SP target SP HTTP/1.x" line */
        REQUEST_LINE_INCOMPLETE,  /* a valid prefix: wait for more bytes */
        REQUEST_LINE_MALFORMED,   /* not an HTTP/1.x request line (400) */
        REQUEST_LINE_TOO_LONG,    /* no line end within max bytes (414) */
        REQUEST_LINE_VERSION,     /* a well-formed line of another HTTP version, e.g. HTTP/2's preface (505) */
        _REQUEST_LINE_VERDICT_MAX,
        _REQUEST_LINE_VERDICT_INVALID = -1,
} RequestLineVerdict;

/* Looks at the first len bytes a client sent. Leading empty lines (CRLF or LF) are skipped, as
 * RFC 9112 §2.2 allows. The method is 1..32 upper-case letters, '-' or '_'; the target is visible
 * ASCII (0x21..0x7e); the version "HTTP/" DIGIT "." DIGIT; the line ends in CRLF or LF. A line
 * (with the empty lines before it) longer than max bytes is REQUEST_LINE_TOO_LONG. */
RequestLineVerdict http_request_line_check(const char *buf, size_t len, size_t max);
