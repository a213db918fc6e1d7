/* SPDX-License-Identifier: MIT */
/* OCI distribution-spec error codes and their HTTP status codes.
 *
 * The spec (v1.1, "Error Codes") lists the code strings but not a status per code; the
 * statuses follow the spec's endpoint table and the route descriptions of its historical
 * appendix (apdx-1, the Docker Registry HTTP API V2 detail), which is also what CNCF
 * Distribution returns:
 *   *_UNKNOWN (blob, upload, manifest, name)                      404
 *   BLOB_UPLOAD_INVALID, DIGEST_INVALID, MANIFEST_INVALID,
 *   MANIFEST_BLOB_UNKNOWN, NAME_INVALID, SIZE_INVALID, TAG_INVALID 400
 *   UNAUTHORIZED 401, DENIED 403, UNSUPPORTED 405 (end-9/end-10: delete disabled),
 *   TOOMANYREQUESTS 429, RANGE_NOT_SATISFIABLE 416 (end-5: out-of-order chunk). */

#include <stdarg.h>

#include "storage/storage.h"

static const char *const oci_error_table[_OCI_ERROR_MAX] = {
        [OCI_OK] = "OK",
        [OCI_BLOB_UNKNOWN] = "BLOB_UNKNOWN",
        [OCI_BLOB_UPLOAD_INVALID] = "BLOB_UPLOAD_INVALID",
        [OCI_BLOB_UPLOAD_UNKNOWN] = "BLOB_UPLOAD_UNKNOWN",
        [OCI_DIGEST_INVALID] = "DIGEST_INVALID",
        [OCI_MANIFEST_BLOB_UNKNOWN] = "MANIFEST_BLOB_UNKNOWN",
        [OCI_MANIFEST_INVALID] = "MANIFEST_INVALID",
        [OCI_MANIFEST_UNKNOWN] = "MANIFEST_UNKNOWN",
        [OCI_NAME_INVALID] = "NAME_INVALID",
        [OCI_NAME_UNKNOWN] = "NAME_UNKNOWN",
        [OCI_SIZE_INVALID] = "SIZE_INVALID",
        [OCI_UNAUTHORIZED] = "UNAUTHORIZED",
        [OCI_DENIED] = "DENIED",
        [OCI_UNSUPPORTED] = "UNSUPPORTED",
        [OCI_TOOMANYREQUESTS] = "TOOMANYREQUESTS",
        [OCI_RANGE_NOT_SATISFIABLE] = "RANGE_NOT_SATISFIABLE",
        [OCI_TAG_INVALID] = "TAG_INVALID",
};

static const int oci_status_table[_OCI_ERROR_MAX] = {
        [OCI_OK] = 200,
        [OCI_BLOB_UNKNOWN] = 404,
        [OCI_BLOB_UPLOAD_INVALID] = 400,
        [OCI_BLOB_UPLOAD_UNKNOWN] = 404,
        [OCI_DIGEST_INVALID] = 400,
        [OCI_MANIFEST_BLOB_UNKNOWN] = 400,
        [OCI_MANIFEST_INVALID] = 400,
        [OCI_MANIFEST_UNKNOWN] = 404,
        [OCI_NAME_INVALID] = 400,
        [OCI_NAME_UNKNOWN] = 404,
        [OCI_SIZE_INVALID] = 400,
        [OCI_UNAUTHORIZED] = 401,
        [OCI_DENIED] = 403,
        [OCI_UNSUPPORTED] = 405,
        [OCI_TOOMANYREQUESTS] = 429,
        [OCI_RANGE_NOT_SATISFIABLE] = 416,
        [OCI_TAG_INVALID] = 400,
};

/* Out-of-range values give the spec's catch-all "UNKNOWN" (clients treat unknown codes so)
 * and 500, so a caller bug never prints NULL or sends a 2xx. */
const char *oci_error_to_string(OciError e) {
        if (e < 0 || e >= _OCI_ERROR_MAX)
                return "UNKNOWN";
        return oci_error_table[e];
}

int oci_error_http_status(OciError e) {
        if (e < 0 || e >= _OCI_ERROR_MAX)
                return 500;
        return oci_status_table[e];
}

int store_error_set(StoreError *e, int r, OciError code, const char *fmt, ...) {
        if (!e)
                return r;
        e->code = code;
        e->message[0] = 0;
        if (fmt) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(e->message, sizeof(e->message), fmt, ap);
                va_end(ap);
        }
        return r;
}
