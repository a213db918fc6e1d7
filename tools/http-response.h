/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>

/* Parses a whole HTTP/1.0 or 1.1 response, as read until the server closed the connection:
 * skips 1xx interim responses, then takes the status, and the body by Content-Length, chunked
 * Transfer-Encoding, or up to the end. *ret_body is malloc()ed and NUL-terminated beyond
 * *ret_body_len. -EBADMSG for a malformed or truncated response, -ENOMEM. */
int http_response_parse(const char *buf, size_t len, long *ret_status, char **ret_body, size_t *ret_body_len);
