/* SPDX-License-Identifier: MIT */
#pragma once

/* Pure parsers of the HTTP range headers used by the OCI API. No I/O, no allocation. */

#include <stdint.h>

/* Range request header of a blob GET (RFC 9110 §14.2), a single range of:
 *   bytes=first-last    bytes=first-    bytes=-suffix
 * The unit is case-insensitive; blanks around the header value and the range are allowed.
 * Positions too large for 64 bits are treated as "beyond the end" (a huge last or suffix
 * clamps to the representation, a huge first is unsatisfiable), as RFC 9110 reads them.
 * Returns:
 *   0        *start..*end_inclusive lies within [0, size): answer 206 with that range.
 *   -ERANGE  syntactically valid but unsatisfiable (first >= size, a zero suffix, or any range
 *            of an empty blob): answer 416 with a Content-Range of "bytes", an asterisk, "/" and the size.
 *   -EINVAL  malformed, another unit, first > last, or several ranges. RFC 9110 lets a
 *            server ignore such a Range header, so the caller answers 200 with the full body
 *            (we do not produce multipart/byteranges). */
int http_range_parse(const char *header, uint64_t size, uint64_t *start, uint64_t *end_inclusive);

/* Content-Range request header of an upload PATCH (or a PUT carrying the last chunk).
 * Accepts the OCI form "<start>-<end>" (distribution-spec: ^[0-9]+-[0-9]+$, inclusive), the
 * RFC 9110 form "bytes <start>-<end>/<total>" (the total may be an asterisk), and the form
 * "bytes=<start>-<end>" that some clients send. Returns 0, or -EINVAL for anything else:
 * junk, signs, blanks inside, end < start, a total <= end, numbers beyond 64 bits
 * (and end = 2^64-1, so end + 1 can not overflow). Whether
 * start matches the session's offset (416 otherwise) is the caller's check. */
int http_content_range_parse(const char *header, uint64_t *start, uint64_t *end_inclusive);
