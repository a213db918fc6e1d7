/* SPDX-License-Identifier: MIT */
#include "storage/storage.h"
#include "tests/unit/tests.h"

TEST(test_codes) {
        ASSERT_STREQ(oci_error_to_string(OCI_BLOB_UNKNOWN), "BLOB_UNKNOWN");
        ASSERT_STREQ(oci_error_to_string(OCI_MANIFEST_BLOB_UNKNOWN), "MANIFEST_BLOB_UNKNOWN");
        ASSERT_STREQ(oci_error_to_string(OCI_TOOMANYREQUESTS), "TOOMANYREQUESTS");
        ASSERT_STREQ(oci_error_to_string(OCI_RANGE_NOT_SATISFIABLE), "RANGE_NOT_SATISFIABLE");
        ASSERT_STREQ(oci_error_to_string(OCI_TAG_INVALID), "TAG_INVALID");
        ASSERT_STREQ(oci_error_to_string(_OCI_ERROR_MAX), "UNKNOWN");
        ASSERT_STREQ(oci_error_to_string(_OCI_ERROR_INVALID), "UNKNOWN");
        /* every code has a string of upper case letters and '_' (spec) and a status */
        for (OciError e = OCI_BLOB_UNKNOWN; e < _OCI_ERROR_MAX; e++) {
                const char *s = oci_error_to_string(e);
                ASSERT_TRUE(s && *s);
                for (const char *p = s; *p; p++)
                        ASSERT_TRUE((*p >= 'A' && *p <= 'Z') || *p == '_');
                int st = oci_error_http_status(e);
                ASSERT_TRUE(st >= 400 && st < 500);
        }
}

TEST(test_statuses) {
        ASSERT_EQ(oci_error_http_status(OCI_BLOB_UNKNOWN), 404);
        ASSERT_EQ(oci_error_http_status(OCI_BLOB_UPLOAD_UNKNOWN), 404);
        ASSERT_EQ(oci_error_http_status(OCI_MANIFEST_UNKNOWN), 404);
        ASSERT_EQ(oci_error_http_status(OCI_NAME_UNKNOWN), 404);
        ASSERT_EQ(oci_error_http_status(OCI_BLOB_UPLOAD_INVALID), 400);
        ASSERT_EQ(oci_error_http_status(OCI_DIGEST_INVALID), 400);
        ASSERT_EQ(oci_error_http_status(OCI_MANIFEST_BLOB_UNKNOWN), 400);
        ASSERT_EQ(oci_error_http_status(OCI_MANIFEST_INVALID), 400);
        ASSERT_EQ(oci_error_http_status(OCI_NAME_INVALID), 400);
        ASSERT_EQ(oci_error_http_status(OCI_SIZE_INVALID), 400);
        ASSERT_EQ(oci_error_http_status(OCI_TAG_INVALID), 400);
        ASSERT_EQ(oci_error_http_status(OCI_UNAUTHORIZED), 401);
        ASSERT_EQ(oci_error_http_status(OCI_DENIED), 403);
        ASSERT_EQ(oci_error_http_status(OCI_UNSUPPORTED), 405);
        ASSERT_EQ(oci_error_http_status(OCI_RANGE_NOT_SATISFIABLE), 416);
        ASSERT_EQ(oci_error_http_status(OCI_TOOMANYREQUESTS), 429);
        ASSERT_EQ(oci_error_http_status(_OCI_ERROR_INVALID), 500);
}

TEST(test_store_error_set) {
        StoreError e = { .code = OCI_OK };
        ASSERT_EQ(store_error_set(&e, -ENOENT, OCI_BLOB_UNKNOWN, "blob %s unknown in %s", "sha256:x", "repo"), -ENOENT);
        ASSERT_EQ(e.code, OCI_BLOB_UNKNOWN);
        ASSERT_STREQ(e.message, "blob sha256:x unknown in repo");
        ASSERT_EQ(store_error_set(NULL, -EINVAL, OCI_DIGEST_INVALID, "x"), -EINVAL);
        /* truncated, still terminated */
        char big[2000];
        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        store_error_set(&e, -EINVAL, OCI_MANIFEST_INVALID, "%s", big);
        ASSERT_EQ(strlen(e.message), sizeof(e.message) - 1);
}

int main(void) {
        RUN(test_codes);
        RUN(test_statuses);
        RUN(test_store_error_set);
        return 0;
}
