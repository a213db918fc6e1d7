/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "registry-api/http-request-line.h"
#include "tests/unit/tests.h"

static RequestLineVerdict check(const char *s) {
        return http_request_line_check(s, strlen(s), 8192);
}

TEST(test_complete_lines) {
        ASSERT_EQ(check("GET /v2/ HTTP/1.1\r\n"), REQUEST_LINE_OK);
        ASSERT_EQ(check("GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n"), REQUEST_LINE_OK);
        ASSERT_EQ(check("HEAD /v2/a/manifests/x HTTP/1.0\n"), REQUEST_LINE_OK);
        ASSERT_EQ(check("\r\n\r\nPATCH /v2/a/blobs/uploads/u?x=1&y=%20 HTTP/1.1\r\n"), REQUEST_LINE_OK);
        ASSERT_EQ(check("OPTIONS * HTTP/1.1\r\n"), REQUEST_LINE_OK);
        ASSERT_EQ(check("M-SEARCH http://h/x HTTP/1.1\r\n"), REQUEST_LINE_OK);
}

/* every proper prefix of a good request is worth waiting for */
TEST(test_prefixes) {
        const char *good = "\r\nDELETE /v2/a/b/blobs/sha256:00 HTTP/1.1\r\nHost: h\r\n\r\n";
        size_t end = strlen("\r\nDELETE /v2/a/b/blobs/sha256:00 HTTP/1.1\r\n");
        for (size_t n = 0; n < end; n++)
                ASSERT_EQ(http_request_line_check(good, n, 8192), REQUEST_LINE_INCOMPLETE);
        ASSERT_EQ(http_request_line_check(good, end, 8192), REQUEST_LINE_OK);
        ASSERT_EQ(http_request_line_check(good, end - 1, 8192), REQUEST_LINE_INCOMPLETE); /* "...HTTP/1.1\r" */
}

TEST(test_malformed) {
        /* a TLS ClientHello: handshake record 0x16 0x03 0x01 */
        const char hello[] = { 0x16, 0x03, 0x01, 0x00, (char) 0xf8, 0x01, 0x00 };
        ASSERT_EQ(http_request_line_check(hello, sizeof hello, 8192), REQUEST_LINE_MALFORMED);
        ASSERT_EQ(http_request_line_check(hello, 1, 8192), REQUEST_LINE_MALFORMED);
        ASSERT_EQ(check("GARBAGE\r\n\r\n"), REQUEST_LINE_MALFORMED);
        ASSERT_EQ(check("get / HTTP/1.1\r\n"), REQUEST_LINE_MALFORMED);
        ASSERT_EQ(check("GET  / HTTP/1.1\r\n"), REQUEST_LINE_MALFORMED);
        ASSERT_EQ(check("GET / x HTTP/1.1\r\n"), REQUEST_LINE_MALFORMED);
        ASSERT_EQ(check("GET /\tx HTTP/1.1\r\n"), REQUEST_LINE_MALFORMED);
        ASSERT_EQ(check("GET / HTTP/1.1 \r\n"), REQUEST_LINE_MALFORMED);
        ASSERT_EQ(check("GET / HTTP/11\r\n"), REQUEST_LINE_MALFORMED);
        ASSERT_EQ(check("GET / http/1.1\r\n"), REQUEST_LINE_MALFORMED);
        ASSERT_EQ(check("GET / HTTP/1.1\rX"), REQUEST_LINE_MALFORMED);
        ASSERT_EQ(check(" GET / HTTP/1.1\r\n"), REQUEST_LINE_MALFORMED);
        ASSERT_EQ(check("\rGET / HTTP/1.1\r\n"), REQUEST_LINE_MALFORMED);
        ASSERT_EQ(check("/ HTTP/1.1\r\n"), REQUEST_LINE_MALFORMED);
        ASSERT_EQ(check("ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFG / HTTP/1.1\r\n"), REQUEST_LINE_MALFORMED); /* 33 */
        ASSERT_EQ(check("ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEF / HTTP/1.1\r\n"), REQUEST_LINE_OK);        /* 32 */
        ASSERT_EQ(check("GET /\x80 HTTP/1.1\r\n"), REQUEST_LINE_MALFORMED);
        const char nul[] = "GET /a\0b HTTP/1.1\r\n";
        ASSERT_EQ(http_request_line_check(nul, sizeof nul - 1, 8192), REQUEST_LINE_MALFORMED);
}

TEST(test_versions_and_length) {
        ASSERT_EQ(check("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), REQUEST_LINE_VERSION);
        ASSERT_EQ(check("GET / HTTP/1.2\r\n"), REQUEST_LINE_VERSION);
        ASSERT_EQ(check("GET / HTTP/0.9\r\n"), REQUEST_LINE_VERSION);
        char big[200];
        memset(big, 'a', sizeof big);
        memcpy(big, "GET /", 5);
        ASSERT_EQ(http_request_line_check(big, sizeof big, 100), REQUEST_LINE_TOO_LONG);
        ASSERT_EQ(http_request_line_check(big, 99, 100), REQUEST_LINE_INCOMPLETE);
        /* a complete line within max is fine whatever follows */
        ASSERT_EQ(http_request_line_check("GET / HTTP/1.1\r\nxxxxxxxxxxxxxxxxxxxx", 36, 17), REQUEST_LINE_OK);
        ASSERT_EQ(http_request_line_check("GET / HTTP/1.1\r\n", 16, 15), REQUEST_LINE_TOO_LONG);
}

int main(void) {
        RUN(test_complete_lines);
        RUN(test_prefixes);
        RUN(test_malformed);
        RUN(test_versions_and_length);
        return 0;
}
