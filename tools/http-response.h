/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>

#include <stdbool.h>

/* Parses an HTTP/1.0 or 1.1 response: skips 1xx interim responses, then takes the status and
 * the body by Content-Length, chunked Transfer-Encoding, or (neither) up to the end of the input.
 * at_eof: the connection was closed after buf. Before that, -EAGAIN says more input is needed
 * (a client may stop reading as soon as this returns 0); at the end, a response cut short is
 * -EBADMSG, as is a malformed one. *ret_body is malloc()ed and NUL-terminated beyond
 * *ret_body_len. -ENOMEM. */
int http_response_parse(const char *buf, size_t len, bool at_eof, long *ret_status, char **ret_body, size_t *ret_body_len);
