/* SPDX-License-Identifier: MIT */
/* The OCI Distribution API (distribution-spec v1.1) on /v2/: routing, manifests, blobs,
 * uploads, tags, catalog, referrers. Status codes follow the spec's endpoint table; where it
 * leaves a choice the decision is written next to the code. */

#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>

#include "common/log.h"
#include "common/util.h"
#include "registry-api/http-form.h"
#include "registry-api/http-range.h"
#include "registry-api/server-internal.h"

typedef enum OciRoute {
        ROUTE_BASE,
        ROUTE_CATALOG,
        ROUTE_MANIFEST,
        ROUTE_BLOB,
        ROUTE_UPLOAD_START,
        ROUTE_UPLOAD,
        ROUTE_TAGS,
        ROUTE_REFERRERS,
        ROUTE_TOKEN,
        _ROUTE_MAX,
        _ROUTE_INVALID = -1,
} OciRoute;

static const char *const route_label[_ROUTE_MAX] = {
        [ROUTE_BASE] = "v2_base",       [ROUTE_CATALOG] = "v2_catalog",     [ROUTE_MANIFEST] = "v2_manifest",
        [ROUTE_BLOB] = "v2_blob",       [ROUTE_UPLOAD_START] = "v2_upload", [ROUTE_UPLOAD] = "v2_upload",
        [ROUTE_TAGS] = "v2_tags",       [ROUTE_REFERRERS] = "v2_referrers", [ROUTE_TOKEN] = "v2_token",
};

static bool method_is(Request *req, const char *m) {
        return streq(req->method, m);
}

static void reply_error(Request *req, OciError e, json_t *detail, const char *fmt, ...) _printf_(4, 5);
static void reply_error(Request *req, OciError e, json_t *detail, const char *fmt, ...) {
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        request_reply_error(req, (unsigned) oci_error_http_status(e), oci_error_to_string(e), detail, "%s", msg);
}

static void reply_method_not_allowed(Request *req, const char *allow) {
        /* spec: UNSUPPORTED is "the operation is unsupported"; 405 with Allow */
        request_reply_error_header(req, 405, "UNSUPPORTED", "Allow", allow, "method %s is not supported on this endpoint",
                                   req->method);
}

/* Validates a digest from the URL or query. Replies (400 DIGEST_INVALID) and returns false if bad. */
static bool check_digest(Request *req, const char *d) {
        if (!d || !*d) {
                reply_error(req, OCI_DIGEST_INVALID, NULL, "a digest is required");
                return false;
        }
        int r = digest_parse(d, NULL);
        if (r == -EOPNOTSUPP) {
                /* spec: an unsupported algorithm is a DIGEST_INVALID 400 (as CNCF Distribution does) */
                reply_error(req, OCI_DIGEST_INVALID, json_pack("{s:s}", "digest", d),
                            "unsupported digest algorithm (sha256 and sha512 are supported)");
                return false;
        }
        if (r < 0) {
                reply_error(req, OCI_DIGEST_INVALID, json_pack("{s:s}", "digest", d), "malformed digest");
                return false;
        }
        return true;
}

/* A manifest reference: a digest (contains ':') or a tag. */
static bool check_reference(Request *req, const char *ref, bool *ret_is_digest) {
        if (strchr(ref, ':')) {
                *ret_is_digest = true;
                return check_digest(req, ref);
        }
        *ret_is_digest = false;
        if (!tag_is_valid(ref)) {
                reply_error(req, OCI_TAG_INVALID, json_pack("{s:s}", "tag", ref),
                            "invalid tag: must match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}");
                return false;
        }
        return true;
}

/* 404 for a missing manifest/blob: NAME_UNKNOWN when the repository itself does not exist. */
static void reply_unknown(Request *req, OciError e, const char *what) {
        if (store_repo_exists(registry_store(req->reg), req->repo) <= 0)
                return reply_error(req, OCI_NAME_UNKNOWN, json_pack("{s:s}", "name", req->repo),
                                   "repository name not known to registry");
        reply_error(req, e, NULL, "%s", what);
}

static bool check_pull(Request *req, const char *digest) {
        char reason[512] = "";
        int r = governance_check_pull(registry_governance(req->reg), req->repo, digest, reason, sizeof(reason));
        if (r == -EACCES) {
                reply_error(req, OCI_DENIED, json_pack("{s:s}", "digest", digest), "%s",
                            reason[0] ? reason : "pulling this digest is denied by policy");
                return false;
        }
        if (r < 0) {
                request_reply_store_error(req, r, NULL, "pull policy check");
                return false;
        }
        return true;
}

static void set_upload_headers(Request *req, struct MHD_Response *resp, const char *uuid, uint64_t offset) {
        char loc[REPO_NAME_MAX + 64], range[48];
        snprintf(loc, sizeof(loc), "/v2/%s/blobs/uploads/%s", req->repo, uuid);
        /* spec: Range is "0-<last byte>" (inclusive); an empty session is "0-0", as Distribution says */
        snprintf(range, sizeof(range), "0-%" PRIu64, offset > 0 ? offset - 1 : 0);
        response_header(resp, "Location", loc);
        response_header(resp, "Range", range);
        response_header(resp, "Docker-Upload-UUID", uuid);
        response_header(resp, "Blob-Upload-Session-ID", uuid);
}

static void reply_upload_state(Request *req, unsigned status, const char *uuid, uint64_t offset) {
        struct MHD_Response *resp = response_empty();
        if (!resp)
                return;
        set_upload_headers(req, resp, uuid, offset);
        request_reply(req, status, resp);
}

static void reply_blob_created(Request *req, const char *digest) {
        struct MHD_Response *resp = response_empty();
        if (!resp)
                return;
        char loc[REPO_NAME_MAX + DIGEST_MAX_LEN + 16];
        snprintf(loc, sizeof(loc), "/v2/%s/blobs/%s", req->repo, digest);
        response_header(resp, "Location", loc);
        response_header(resp, "Docker-Content-Digest", digest);
        request_reply(req, 201, resp);
}

/* ------------------------------------------------------------------ manifests */

/* A reference that is neither a valid tag nor a valid digest names no manifest. */
static bool reference_is_valid(const char *ref, bool *ret_is_digest) {
        *ret_is_digest = strchr(ref, ':') != NULL;
        return *ret_is_digest ? digest_parse(ref, NULL) == 0 : tag_is_valid(ref);
}

static void manifest_get(Request *req) {
        bool is_digest;
        /* spec (and its conformance suite's ".INVALID_MANIFEST_NAME"): a pull of a reference that
         * cannot exist is 404 MANIFEST_UNKNOWN; only a PUT with a bad tag is 400 TAG_INVALID */
        if (!reference_is_valid(req->ref, &is_digest))
                return reply_error(req, OCI_MANIFEST_UNKNOWN, json_pack("{s:s}", "reference", req->ref),
                                   "manifest unknown: \"%s\" is neither a valid tag nor a valid digest", req->ref);
        _cleanup_(stored_manifest_freep) StoredManifest *m = NULL;
        int r = store_manifest_get(registry_store(req->reg), req->repo, req->ref, &m);
        if (r == -ENOENT)
                return reply_unknown(req, OCI_MANIFEST_UNKNOWN, "manifest unknown to registry");
        if (r < 0)
                return request_reply_store_error(req, r, NULL, "reading the manifest");
        if (!check_pull(req, m->digest))
                return;

        if (method_is(req, "GET"))
                store_note_pull(registry_store(req->reg), req->repo, is_digest ? NULL : req->ref, m->digest);

        struct MHD_Response *resp = response_buffer_copy(m->data, m->size);
        if (!resp)
                return;
        char etag[DIGEST_MAX_LEN + 2];
        snprintf(etag, sizeof(etag), "\"%s\"", m->digest);
        req->resp_bytes = method_is(req, "HEAD") ? 0 : m->size;
        response_header(resp, "Content-Type", m->media_type ? m->media_type : MEDIA_TYPE_OCI_MANIFEST);
        response_header(resp, "Docker-Content-Digest", m->digest);
        response_header(resp, "ETag", etag);
        request_reply(req, 200, resp);
}

static enum MHD_Result collect_tags(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
                                    const char *value, size_t value_size) {
        json_t *tags = cls;
        /* MHD unescapes %00 into a NUL: "nul%00evil" would read as the tag "nul". Such a value
         * and one json_string() refuses (not UTF-8) are kept as null, refused as TAG_INVALID. */
        if (!streq(key, "tag"))
                return MHD_YES;
        json_t *t = !value ? json_string("") : strlen(value) == value_size ? json_string(value) : NULL;
        json_array_append_new(tags, t ?: json_null());
        return MHD_YES;
}

static void manifest_put_finish(Request *req) {
        Registry *reg = req->reg;
        if (req->body_too_large)
                return request_reply_error(req, 413, "SIZE_INVALID", NULL, "manifest exceeds the limit of %" PRIu64 " bytes",
                                           registry_config(reg)->max_manifest_bytes);
        if (req->body_len == 0)
                return reply_error(req, OCI_MANIFEST_INVALID, NULL, "empty manifest body");

        _cleanup_(json_decrefp) json_t *tags = json_array();
        if (!tags)
                return request_reply_store_error(req, -ENOMEM, NULL, "out of memory");
        MHD_get_connection_values_n(req->conn, MHD_GET_ARGUMENT_KIND, collect_tags, tags);
        size_t n_tags = json_array_size(tags);
        _cleanup_free_ const char **tagv = calloc(n_tags + 1, sizeof(char *));
        if (!tagv)
                return request_reply_store_error(req, -ENOMEM, NULL, "out of memory");
        for (size_t i = 0; i < n_tags; i++) {
                tagv[i] = json_string_value(json_array_get(tags, i));
                if (!tag_is_valid(tagv[i]))
                        return reply_error(req, OCI_TAG_INVALID, json_pack("{s:s?}", "tag", tagv[i]),
                                           tagv[i] ? "invalid tag in ?tag=" : "invalid tag in ?tag=: a NUL byte or not UTF-8");
        }

        ManifestPut p = {
                .repo = req->repo,
                .data = req->body,
                .len = req->body_len,
                .content_type = request_header(req, MHD_HTTP_HEADER_CONTENT_TYPE),
                .reference = req->ref,
                .tags = n_tags ? tagv : NULL,
                .n_tags = n_tags,
                .actor = req->actor,
        };
        char digest[DIGEST_MAX_LEN];
        StoreError err = {};
        int r = store_manifest_put(registry_store(reg), &p, digest, &err);
        if (r < 0)
                return request_reply_store_error(req, r, &err, "storing the manifest");

        /* Every tag this PUT set: the URL's (when it is a tag) and the ?tag= values. */
        _cleanup_free_ const char **all = calloc(n_tags + 2, sizeof(char *));
        size_t n_all = 0;
        if (all) {
                if (!strchr(req->ref, ':'))
                        all[n_all++] = req->ref;
                for (size_t i = 0; i < n_tags; i++)
                        all[n_all++] = tagv[i];
        }
        governance_after_manifest_put(registry_governance(reg), req->repo, digest, all, all ? n_all : 0, req->actor);

        struct MHD_Response *resp = response_empty();
        if (!resp)
                return;
        char loc[REPO_NAME_MAX + DIGEST_MAX_LEN + 16];
        snprintf(loc, sizeof(loc), "/v2/%s/manifests/%s", req->repo, digest);
        response_header(resp, "Location", loc);
        response_header(resp, "Docker-Content-Digest", digest);
        /* OCI-Subject needs the stored subject; look it up only for bodies that mention one */
        if (memmem(req->body, req->body_len, "\"subject\"", 9)) {
                _cleanup_(stored_manifest_freep) StoredManifest *m = NULL;
                if (store_manifest_get_by_digest(registry_store(reg), digest, &m) >= 0 && m->subject)
                        response_header(resp, "OCI-Subject", m->subject);
        }
        request_reply(req, 201, resp);
}

static void manifest_put_begin(Request *req) {
        bool is_digest;
        if (!check_reference(req, req->ref, &is_digest))
                return;
        uint64_t limit = registry_config(req->reg)->max_manifest_bytes;
        const char *cl = request_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > limit)
                /* refused before reading: MHD does not read the body of an early POST/PUT answer */
                return request_reply_error(req, 413, "SIZE_INVALID", NULL,
                                           "manifest of %s bytes exceeds the limit of %" PRIu64 " bytes", cl, limit);
        req->body_mode = BODY_BUFFER;
        req->body_limit = limit;
        req->finish = manifest_put_finish;
}

static void manifest_delete(Request *req) {
        bool is_digest;
        if (!check_reference(req, req->ref, &is_digest))
                return;
        StoreError err = {};
        int r = is_digest ? store_manifest_delete(registry_store(req->reg), req->repo, req->ref, req->actor, 0, &err)
                          : store_tag_delete(registry_store(req->reg), req->repo, req->ref, req->actor, 0, &err);
        if (r == -ENOENT && err.code == OCI_OK)
                return reply_unknown(req, OCI_MANIFEST_UNKNOWN, is_digest ? "manifest unknown" : "tag unknown");
        if (r < 0)
                return request_reply_store_error(req, r, &err, "deleting the manifest");
        request_reply(req, 202, NULL);
}

static void manifest_route(Request *req) {
        if (method_is(req, "GET") || method_is(req, "HEAD"))
                return manifest_get(req);
        if (method_is(req, "PUT"))
                return manifest_put_begin(req);
        if (method_is(req, "DELETE"))
                return manifest_delete(req);
        reply_method_not_allowed(req, "GET, HEAD, PUT, DELETE");
}

/* ------------------------------------------------------------------ blobs */

typedef struct BlobStream {
        BlobReader *reader;
        uint64_t start;
        uint64_t len;
} BlobStream;

static ssize_t blob_stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
        BlobStream *bs = cls;
        if (pos >= bs->len)
                return MHD_CONTENT_READER_END_OF_STREAM;
        size_t n = (size_t) MIN((uint64_t) max, bs->len - pos);
        ssize_t k = blob_reader_pread(bs->reader, buf, n, bs->start + pos);
        if (k < 0) {
                log_error_errno((int) k, "reading blob: %m");
                return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (k == 0)
                return MHD_CONTENT_READER_END_WITH_ERROR; /* shorter than its record: never pad */
        return k;
}

static void blob_stream_free(void *cls) {
        BlobStream *bs = cls;
        blob_reader_free(bs->reader);
        free(bs);
}

static void blob_get(Request *req) {
        if (!check_digest(req, req->ref))
                return;
        Store *s = registry_store(req->reg);
        BlobInfo info;
        int r = store_repo_blob_info(s, req->repo, req->ref, &info);
        if (r == -ENOENT)
                return reply_unknown(req, OCI_BLOB_UNKNOWN, "blob unknown to registry");
        if (r < 0)
                return request_reply_store_error(req, r, NULL, "reading the blob record");
        if (!check_pull(req, req->ref))
                return;

        _cleanup_(blob_reader_freep) BlobReader *br = NULL;
        r = store_blob_open(s, req->ref, &br);
        if (r == -ENOENT)
                return reply_error(req, OCI_BLOB_UNKNOWN, NULL, "blob content is missing");
        if (r < 0)
                return request_reply_store_error(req, r, NULL, "opening the blob");
        uint64_t size = blob_reader_size(br);

        uint64_t start = 0, end = size ? size - 1 : 0;
        bool partial = false;
        const char *range = request_header(req, MHD_HTTP_HEADER_RANGE);
        if (range) {
                r = http_range_parse(range, size, &start, &end);
                if (r == -ERANGE) {
                        char cr[64];
                        snprintf(cr, sizeof(cr), "bytes */%" PRIu64, size);
                        return request_reply_error_header(req, 416, "RANGE_NOT_SATISFIABLE", "Content-Range", cr,
                                                          "requested range not satisfiable");
                }
                partial = r == 0;
                if (!partial) {
                        start = 0;
                        end = size ? size - 1 : 0;
                }
        }
        uint64_t len = size ? end - start + 1 : 0;

        struct MHD_Response *resp = NULL;
        int fd = blob_reader_fd(br);
        if (len == 0)
                resp = response_empty();
        else if (fd >= 0 && !request_is_tls(req)) {
                /* sendfile: MHD owns (and closes) the fd; the reader goes away now. (With TLS, MHD
                 * would read fd responses 4 KiB at a time; the stream below reads 64 KiB.) */
                int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
                if (dfd < 0)
                        return request_reply_store_error(req, -errno, NULL, "duplicating the blob fd");
                resp = MHD_create_response_from_fd_at_offset64(len, dfd, start);
                if (!resp)
                        close(dfd);
        } else {
                BlobStream *bs = calloc(1, sizeof(BlobStream));
                if (!bs)
                        return request_reply_store_error(req, -ENOMEM, NULL, "out of memory");
                bs->reader = steal_pointer(&br);
                bs->start = start;
                bs->len = len;
                resp = MHD_create_response_from_callback(len, 64 * 1024, blob_stream_read, bs, blob_stream_free);
                if (!resp)
                        blob_stream_free(bs);
        }
        if (!resp)
                return request_reply_store_error(req, -ENOMEM, NULL, "creating the response");

        char etag[DIGEST_MAX_LEN + 2];
        snprintf(etag, sizeof(etag), "\"%s\"", req->ref);
        response_header(resp, "Content-Type", "application/octet-stream");
        response_header(resp, "Docker-Content-Digest", req->ref);
        response_header(resp, "Accept-Ranges", "bytes");
        response_header(resp, "ETag", etag);
        response_header(resp, "Cache-Control", "max-age=31536000");
        if (partial) {
                char cr[96];
                snprintf(cr, sizeof(cr), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, start, end, size);
                response_header(resp, "Content-Range", cr);
        }
        req->resp_bytes = method_is(req, "HEAD") ? 0 : len;
        request_reply(req, partial ? 206 : 200, resp);
}

static void blob_delete(Request *req) {
        if (!check_digest(req, req->ref))
                return;
        char reason[512] = "";
        int r = governance_check_blob_delete(registry_governance(req->reg), req->repo, req->ref, reason, sizeof(reason));
        if (r == -EPERM)
                /* spec: 405 UNSUPPORTED where a registry does not allow the deletion */
                return reply_error(req, OCI_UNSUPPORTED, json_pack("{s:s}", "digest", req->ref), "%s", reason);
        if (r == -EBUSY)
                return request_reply_error(req, 409, "DENIED", json_pack("{s:s}", "digest", req->ref), "%s", reason);
        if (r < 0)
                return request_reply_store_error(req, r, NULL, "checking the delete policy");
        StoreError err = {};
        r = store_blob_unlink(registry_store(req->reg), req->repo, req->ref, req->actor, &err);
        if (r == -ENOENT)
                return reply_unknown(req, OCI_BLOB_UNKNOWN, "blob unknown to registry");
        if (r == -EBUSY)
                /* 409: the request conflicts with the repository's state (a manifest uses the blob) */
                return request_reply_error(req, 409, "DENIED", json_pack("{s:s}", "digest", req->ref), "%s", err.message);
        if (r < 0)
                return request_reply_store_error(req, r, &err, "deleting the blob");
        request_reply(req, 202, NULL);
}

static void blob_route(Request *req) {
        if (method_is(req, "GET") || method_is(req, "HEAD"))
                return blob_get(req);
        if (method_is(req, "DELETE"))
                return blob_delete(req);
        reply_method_not_allowed(req, "GET, HEAD, DELETE");
}

/* ------------------------------------------------------------------ uploads */

static void upload_commit_finish(Request *req) {
        Store *s = registry_store(req->reg);
        if (!req->upload)
                return request_reply_store_error(req, -EIO, NULL, "upload session lost");
        if (req->upload_error < 0) {
                int r = req->upload_error;
                return request_reply_store_error(req, r, NULL, "writing the upload");
        }
        char uuid[37];
        snprintf(uuid, sizeof(uuid), "%s", upload_uuid(req->upload));
        Upload *u = steal_pointer(&req->upload); /* freed by commit in every case */
        StoreError err = {};
        int r = store_upload_commit(s, u, req->digest, req->actor, &err);
        if (r < 0) {
                if (err.code == OCI_OK && r == -EBADMSG)
                        err.code = OCI_DIGEST_INVALID;
                return request_reply_store_error(req, r, &err, "committing the blob");
        }
        reply_blob_created(req, req->digest);
}

/* Content-Range of a PATCH/PUT against the session's offset. Replies 416 and returns false on
 * a mismatch (out of order, repeated) or a malformed header. */
static bool check_content_range(Request *req) {
        const char *cr = request_header(req, "Content-Range");
        if (!cr)
                return true;
        uint64_t offset = upload_offset(req->upload);
        uint64_t start, end;
        if (http_content_range_parse(cr, &start, &end) < 0 || start != offset) {
                reply_upload_state(req, 416, upload_uuid(req->upload), offset);
                return false;
        }
        const char *cl = request_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) != end - start + 1) {
                reply_upload_state(req, 416, upload_uuid(req->upload), offset);
                return false;
        }
        return true;
}

static bool acquire_upload(Request *req) {
        int r = store_upload_acquire(registry_store(req->reg), req->repo, req->upload_uuid, &req->upload);
        if (r == -ENOENT) {
                reply_error(req, OCI_BLOB_UPLOAD_UNKNOWN, NULL, "blob upload unknown to registry");
                return false;
        }
        if (r == -EBUSY) {
                /* The spec has no word for it: 409 Conflict, the session stays usable. */
                request_reply_error(req, 409, "BLOB_UPLOAD_INVALID", NULL,
                                    "upload session is in use by another request; retry when it has finished");
                return false;
        }
        if (r < 0) {
                request_reply_store_error(req, r, NULL, "opening the upload session");
                return false;
        }
        return true;
}

static void upload_patch_finish(Request *req) {
        if (req->upload_error < 0)
                return request_reply_store_error(req, req->upload_error, NULL, "writing the upload");
        reply_upload_state(req, 202, upload_uuid(req->upload), upload_offset(req->upload));
}

static void upload_session(Request *req) {
        if (!uuid_is_valid(req->upload_uuid))
                return reply_error(req, OCI_BLOB_UPLOAD_UNKNOWN, json_pack("{s:s}", "uuid", req->upload_uuid),
                                   "blob upload unknown to registry (malformed session id)");
        Store *s = registry_store(req->reg);

        if (method_is(req, "GET")) {
                if (!acquire_upload(req))
                        return;
                /* the answer is deferred to the final call: let the session go right away */
                char uuid[37];
                snprintf(uuid, sizeof(uuid), "%s", upload_uuid(req->upload));
                uint64_t offset = upload_offset(req->upload);
                store_upload_release(s, steal_pointer(&req->upload));
                return reply_upload_state(req, 204, uuid, offset);
        }
        if (method_is(req, "DELETE")) {
                int r = store_upload_cancel(s, req->repo, req->upload_uuid);
                if (r == -ENOENT)
                        return reply_error(req, OCI_BLOB_UPLOAD_UNKNOWN, NULL, "blob upload unknown to registry");
                if (r == -EBUSY)
                        return request_reply_error(req, 409, "BLOB_UPLOAD_INVALID", NULL,
                                                   "upload session is in use by another request");
                if (r < 0)
                        return request_reply_store_error(req, r, NULL, "cancelling the upload");
                return request_reply(req, 204, NULL);
        }
        if (method_is(req, "PATCH")) {
                if (!acquire_upload(req))
                        return;
                if (!check_content_range(req))
                        return;
                req->body_mode = BODY_UPLOAD;
                req->finish = upload_patch_finish;
                return;
        }
        if (method_is(req, "PUT")) {
                const char *d = request_query(req, "digest");
                if (!check_digest(req, d))
                        return;
                if (!(req->digest = strdup(d)))
                        return request_reply_store_error(req, -ENOMEM, NULL, "out of memory");
                if (!acquire_upload(req))
                        return;
                if (!check_content_range(req))
                        return;
                req->body_mode = BODY_UPLOAD;
                req->finish = upload_commit_finish;
                return;
        }
        reply_method_not_allowed(req, "GET, PATCH, PUT, DELETE");
}

static void upload_start(Request *req) {
        if (!method_is(req, "POST"))
                return reply_method_not_allowed(req, "POST");
        Store *s = registry_store(req->reg);

        const char *mount = request_query(req, "mount");
        if (mount) {
                const char *from = request_query(req, "from");
                /* spec: a mount that can not be done falls back to a new session (202) */
                /* with auth on, a mount needs pull on a named source (else: a new session) */
                bool may = request_auth_enabled(req) ? from && repo_name_is_valid(from) && request_may(req, from, "pull")
                                                     : !from || repo_name_is_valid(from);
                if (digest_parse(mount, NULL) == 0 && may) {
                        int r = store_blob_mount(s, req->repo, from, mount, req->actor);
                        if (r >= 0)
                                return reply_blob_created(req, mount);
                        if (r != -ENOENT)
                                log_warning_errno(r, "mount %s from %s into %s: %m", mount, strna(from), req->repo);
                }
        }

        const char *d = request_query(req, "digest");
        if (d && !check_digest(req, d))
                return;

        char uuid[37];
        const Config *c = registry_config(req->reg);
        UploadLimits limits = {
                .client = req->client,
                .max_sessions = c->max_upload_sessions,
                .max_per_client = c->max_upload_sessions_per_client,
        };
        StoreError err = {};
        int r = store_upload_begin(s, req->repo, &limits, uuid, &err);
        if (r == -EUSERS)
                /* the limit frees up as sessions finish or are purged */
                return request_reply_error_header(req, 429, "TOOMANYREQUESTS", "Retry-After", "10", "%s", err.message);
        if (r < 0)
                return request_reply_store_error(req, r, &err, "starting an upload");
        if (!(req->upload_uuid = strdup(uuid)))
                return request_reply_store_error(req, -ENOMEM, NULL, "out of memory");

        if (!d)
                return reply_upload_state(req, 202, uuid, 0);

        /* Single-request upload: POST ?digest= with the blob as body, committed at the end. */
        if (!(req->digest = strdup(d)))
                return request_reply_store_error(req, -ENOMEM, NULL, "out of memory");
        r = store_upload_acquire(s, req->repo, uuid, &req->upload);
        if (r < 0)
                return request_reply_store_error(req, r, NULL, "opening the upload session");
        req->cancel_upload_on_abort = true;
        req->body_mode = BODY_UPLOAD;
        req->finish = upload_commit_finish;
}

/* ------------------------------------------------------------------ listings */

/* n: absent = no limit (-1), else a non-negative integer. Replies 400 and returns false if bad. */
static bool parse_n(Request *req, long long *ret) {
        const char *n = request_query(req, "n");
        *ret = -1;
        if (!n)
                return true;
        char *end;
        errno = 0;
        long long v = strtoll(n, &end, 10);
        if (errno || end == n || *end || v < 0 || *n == '-' || *n == '+') {
                request_reply_error(req, 400, "PAGINATION_NUMBER_INVALID", json_pack("{s:s}", "n", n),
                                    "invalid pagination number n: expected a non-negative integer");
                return false;
        }
        *ret = v;
        return true;
}

static void reply_list(Request *req, const char *path, const char *key, const char *name, char **items, bool more,
                       long long n) {
        json_t *arr = json_array();
        for (char **i = items; i && *i; i++)
                json_array_append_new(arr, json_string(*i));
        json_t *body = name ? json_pack("{s:s,s:o}", "name", name, key, arr) : json_pack("{s:o}", key, arr);
        if (!body)
                return request_reply_store_error(req, -ENOMEM, NULL, "out of memory");
        size_t count = 0;
        for (char **i = items; i && *i; i++)
                count++;
        _cleanup_free_ char *link = more && n > 0 && count > 0
                                            ? strdup_printf("<%s?n=%lld&last=%s>; rel=\"next\"", path, n, items[count - 1])
                                            : NULL;
        request_reply_json_header(req, 200, body, NULL, link ? "Link" : NULL, link);
}

static void tags_list(Request *req) {
        if (!method_is(req, "GET") && !method_is(req, "HEAD"))
                return reply_method_not_allowed(req, "GET, HEAD");
        long long n;
        if (!parse_n(req, &n))
                return;
        const char *last = request_query(req, "last");
        _cleanup_strv_free_ char **tags = NULL;
        bool more = false;
        int r = store_tags_list(registry_store(req->reg), req->repo, last, n > 0 ? (size_t) n : 0, &tags, &more);
        if (r == -ENOENT)
                return reply_error(req, OCI_NAME_UNKNOWN, json_pack("{s:s}", "name", req->repo),
                                   "repository name not known to registry");
        if (r < 0)
                return request_reply_store_error(req, r, NULL, "listing tags");
        if (n == 0) {
                /* n=0: an empty page, nothing more announced */
                strv_free(tags);
                tags = NULL;
                more = false;
        }
        _cleanup_free_ char *path = strdup_printf("/v2/%s/tags/list", req->repo);
        reply_list(req, path, "tags", req->repo, tags, more, n);
}

/* The repositories after last the caller may pull, at most n (0 = all), and whether more follow:
 * pages of the store's catalog filtered until n are found or it ends. */
static int catalog_visible(Request *req, const char *last, size_t n, char ***ret, bool *ret_more) {
        Store *s = registry_store(req->reg);
        if (!request_auth_enabled(req))
                return store_catalog(s, last, n, ret, ret_more);
        size_t batch = n > 0 ? MAX(n, (size_t) 100) : 0, count = 0;
        _cleanup_strv_free_ char **out = calloc(1, sizeof(char *));
        _cleanup_free_ char *cursor = last ? strdup(last) : NULL;
        if (!out || (last && !cursor))
                return -ENOMEM;
        bool more = true;
        while (more && (n == 0 || count < n)) {
                _cleanup_strv_free_ char **page = NULL;
                int r = store_catalog(s, cursor, batch, &page, &more);
                if (r < 0)
                        return r;
                for (char **i = page; *i; i++) {
                        free(cursor);
                        if (!(cursor = strdup(*i)))
                                return -ENOMEM;
                        if (n > 0 && count == n) {
                                more = true; /* a visible one is left over: there is more */
                                break;
                        }
                        if (!request_may(req, *i, "pull"))
                                continue;
                        char **grown = realloc(out, (count + 2) * sizeof(char *));
                        if (!grown)
                                return -ENOMEM;
                        out = grown;
                        out[count++] = steal_pointer(i);
                        out[count] = NULL;
                }
                if (!page[0])
                        more = false;
        }
        *ret_more = more && n > 0 && count == n;
        *ret = steal_pointer(&out);
        return 0;
}

static void catalog(Request *req) {
        if (!method_is(req, "GET") && !method_is(req, "HEAD"))
                return reply_method_not_allowed(req, "GET, HEAD");
        /* a bearer token needs registry:catalog:*; the list shows only what the caller may pull */
        if (req->identity.bearer && !request_authorize(req, "", "catalog"))
                return;
        long long n;
        if (!parse_n(req, &n))
                return;
        const char *last = request_query(req, "last");
        _cleanup_strv_free_ char **repos = NULL;
        bool more = false;
        int r = catalog_visible(req, last, n > 0 ? (size_t) n : 0, &repos, &more);
        if (r < 0)
                return request_reply_store_error(req, r, NULL, "listing repositories");
        if (n == 0) {
                strv_free(repos);
                repos = NULL;
                more = false;
        }
        reply_list(req, "/v2/_catalog", "repositories", NULL, repos, more, n);
}

static void referrers(Request *req) {
        if (!method_is(req, "GET") && !method_is(req, "HEAD"))
                return reply_method_not_allowed(req, "GET, HEAD");
        if (!check_digest(req, req->ref))
                return;
        const char *at = request_query(req, "artifactType");
        if (at && !*at)
                at = NULL;
        json_t *list = NULL;
        int r = store_referrers(registry_store(req->reg), req->repo, req->ref, at, &list);
        if (r < 0)
                return request_reply_store_error(req, r, NULL, "listing referrers");
        json_t *index = json_pack("{s:i,s:s,s:o}", "schemaVersion", 2, "mediaType", MEDIA_TYPE_OCI_INDEX, "manifests",
                                  list ? list : json_array());
        if (!index)
                return request_reply_store_error(req, -ENOMEM, NULL, "out of memory");
        request_reply_json_header(req, 200, index, MEDIA_TYPE_OCI_INDEX, at ? "OCI-Filters-Applied" : NULL, "artifactType");
}

/* ------------------------------------------------------------------ the token service */

/* Scopes of ?scope= (GET: repeated, or several in one) or of the form's scope field (POST). */
static enum MHD_Result collect_scopes(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
        char **all = cls;
        if (!streq(key, "scope") || !value)
                return MHD_YES;
        char *joined = strdup_printf("%s%s%s", strempty(*all), *all ? " " : "", value);
        free(*all);
        *all = joined;
        return joined ? MHD_YES : MHD_NO;
}

static void token_reply(Request *req, const char *scope_text, const char *refresh, bool offline) {
        TokenScope *scopes = NULL;
        size_t n = 0;
        if (scope_text && *scope_text) {
                int r = token_scopes_parse(scope_text, &scopes, &n);
                if (r < 0)
                        return request_reply_error(req, 400, "UNSUPPORTED", json_pack("{s:s}", "scope", scope_text),
                                                   "malformed scope: expected <type>:<name>:<action>[,<action>...], "
                                                   "e.g. repository:apps/search:pull,push");
        }
        json_t *body = NULL;
        char reason[256] = "";
        int r = registry_issue_token(req, refresh, scopes, n, offline, &body, reason, sizeof reason);
        token_scopes_free(scopes, n);
        if (r == -EACCES)
                return request_reply_unauthorized(req, NULL, NULL, "%s", reason);
        if (r < 0)
                return request_reply_store_error(req, r, NULL, "issuing a token");
        request_reply_json(req, 200, body);
}

static void token_post_finish(Request *req) {
        FormField *f = NULL;
        size_t n = 0;
        if (req->body_too_large)
                return request_reply_error(req, 413, "SIZE_INVALID", NULL, "token request body too large");
        if (form_parse(req->body ? req->body : "", req->body_len, &f, &n) < 0)
                return request_reply_error(req, 400, "UNSUPPORTED", NULL, "malformed application/x-www-form-urlencoded body");
        const char *grant = form_get(f, n, "grant_type");
        const char *scope = form_get(f, n, "scope");
        bool offline = streq(strempty(form_get(f, n, "access_type")), "offline");
        if (streq(strempty(grant), "refresh_token")) {
                const char *refresh = form_get(f, n, "refresh_token");
                if (!refresh || !*refresh)
                        request_reply_error(req, 400, "UNSUPPORTED", NULL, "refresh_token: missing");
                else
                        token_reply(req, scope, refresh, false);
        } else if (streq(strempty(grant), "password")) {
                const char *user = form_get(f, n, "username"), *password = form_get(f, n, "password");
                if (!user || !password)
                        request_reply_error(req, 400, "UNSUPPORTED", NULL, "username and password: both are needed");
                else if (registry_identify_password(req, user, password))
                        token_reply(req, scope, NULL, offline);
        } else
                request_reply_error(req, 400, "UNSUPPORTED", json_pack("{s:s?}", "grant_type", grant),
                                    "grant_type: expected refresh_token or password");
        form_free(f, n);
}

/* GET /v2/token?service=&scope=&offline_token=true with Basic credentials (or none: anonymous);
 * POST with the OAuth2 form (grant_type refresh_token or password), as docker does with the
 * refresh token it was given. */
static void token_route(Request *req) {
        if (!request_auth_enabled(req))
                return request_reply_error(req, 404, "NOT_FOUND", NULL,
                                           "no token service: authentication is not configured (auth.htpasswd, auth.acl)");
        if (req->identity.bearer)
                return request_reply_unauthorized(req, NULL, NULL, "/v2/token takes Basic credentials or a refresh token, not a bearer token");
        if (method_is(req, "GET")) {
                _cleanup_free_ char *scopes = NULL;
                MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, collect_scopes, &scopes);
                const char *offline = request_query(req, "offline_token");
                return token_reply(req, scopes, NULL, offline && streq(offline, "true"));
        }
        if (method_is(req, "POST")) {
                req->body_mode = BODY_BUFFER;
                req->body_limit = 16 * 1024;
                req->finish = token_post_finish;
                return;
        }
        reply_method_not_allowed(req, "GET, POST");
}

/* Every /v2/ route and what it needs, checked before its handler (server.c request_authorize()).
 * action NULL: the route checks for itself (see note). GET /v1/registry/routes lists this table. */
typedef struct OciAccess {
        OciRoute route;
        const char *methods; /* space-separated */
        const char *path;
        const char *action;
        const char *note;
} OciAccess;

static const OciAccess oci_access[] = {
        { ROUTE_BASE, "GET HEAD", "/v2/", NULL, "credentials of any kind (with auth on)" },
        { ROUTE_CATALOG, "GET HEAD", "/v2/_catalog", NULL, "lists the repositories the caller may pull; a bearer token needs registry:catalog:*" },
        { ROUTE_TOKEN, "GET POST", "/v2/token", NULL, "Basic credentials, a refresh token or none (anonymous grants)" },
        { ROUTE_MANIFEST, "GET HEAD", "/v2/<name>/manifests/<reference>", "pull", NULL },
        { ROUTE_MANIFEST, "PUT", "/v2/<name>/manifests/<reference>", "push", NULL },
        { ROUTE_MANIFEST, "DELETE", "/v2/<name>/manifests/<reference>", "delete", NULL },
        { ROUTE_BLOB, "GET HEAD", "/v2/<name>/blobs/<digest>", "pull", NULL },
        { ROUTE_BLOB, "DELETE", "/v2/<name>/blobs/<digest>", "delete", NULL },
        { ROUTE_UPLOAD_START, "POST", "/v2/<name>/blobs/uploads/", "push", "a mount also needs pull on ?from=" },
        { ROUTE_UPLOAD, "GET PATCH PUT DELETE", "/v2/<name>/blobs/uploads/<uuid>", "push", NULL },
        { ROUTE_TAGS, "GET HEAD", "/v2/<name>/tags/list", "pull", NULL },
        { ROUTE_REFERRERS, "GET HEAD", "/v2/<name>/referrers/<digest>", "pull", NULL },
};

static bool methods_have(const char *methods, const char *method) {
        size_t l = strlen(method);
        for (const char *p = methods; (p = strstr(p, method)); p += l)
                if ((p == methods || p[-1] == ' ') && (p[l] == ' ' || p[l] == 0))
                        return true;
        return false;
}

/* The action a route needs; NULL if it checks for itself or the method is not one of its own
 * (the handler answers 405). */
static const char *route_action(OciRoute route, const char *method) {
        for (size_t i = 0; i < ELEMENTSOF(oci_access); i++)
                if (oci_access[i].route == route && methods_have(oci_access[i].methods, method))
                        return oci_access[i].action;
        return NULL;
}

json_t *oci_routes_json(void) {
        json_t *a = json_array();
        for (size_t i = 0; a && i < ELEMENTSOF(oci_access); i++)
                json_array_append_new(a, json_pack("{s:s, s:s, s:s?, s:s?}", "methods", oci_access[i].methods, "path",
                                                   oci_access[i].path, "action", oci_access[i].action, "note",
                                                   oci_access[i].note));
        return a;
}

/* ------------------------------------------------------------------ routing */

/* Splits "/v2/<name>/<suffix>". Names contain slashes; what follows the name has a fixed shape,
 * so the route is recognised from the end of the path. */
static OciRoute route_parse(const char *url, char **ret_name, char **ret_arg) {
        const char *p = startswith(url, "/v2");
        *ret_name = *ret_arg = NULL;
        if (!p || *p == 0 || streq(p, "/"))
                return ROUTE_BASE;
        p++; /* past '/' */
        if (streq(p, "_catalog") || streq(p, "_catalog/"))
                return ROUTE_CATALOG;
        if (streq(p, "token"))
                return ROUTE_TOKEN;

        size_t len = strlen(p);
        struct {
                const char *suffix;
                OciRoute route;
        } fixed[] = {
                { "/tags/list", ROUTE_TAGS },
                { "/blobs/uploads/", ROUTE_UPLOAD_START },
                { "/blobs/uploads", ROUTE_UPLOAD_START },
        };
        for (size_t i = 0; i < ELEMENTSOF(fixed); i++)
                if (endswith(p, fixed[i].suffix)) {
                        *ret_name = strndup(p, len - strlen(fixed[i].suffix));
                        return *ret_name ? fixed[i].route : _ROUTE_INVALID;
                }

        /* <name>/<kind>/<arg> with arg the last component */
        const char *slash = strrchr(p, '/');
        if (!slash)
                return _ROUTE_INVALID;
        const char *arg = slash + 1;
        size_t head = (size_t) (slash - p); /* "<name>/<kind>" */
        struct {
                const char *kind;
                OciRoute route;
        } kinds[] = {
                { "/manifests", ROUTE_MANIFEST },
                { "/blobs/uploads", ROUTE_UPLOAD },
                { "/blobs", ROUTE_BLOB },
                { "/referrers", ROUTE_REFERRERS },
        };
        for (size_t i = 0; i < ELEMENTSOF(kinds); i++) {
                size_t kl = strlen(kinds[i].kind);
                if (head > kl && strncmp(p + head - kl, kinds[i].kind, kl) == 0) {
                        *ret_name = strndup(p, head - kl);
                        *ret_arg = strdup(arg);
                        if (!*ret_name || !*ret_arg) {
                                free(*ret_name);
                                free(*ret_arg);
                                *ret_name = *ret_arg = NULL;
                                return _ROUTE_INVALID;
                        }
                        return kinds[i].route;
                }
        }
        return _ROUTE_INVALID;
}

void oci_begin(Request *req) {
        char *name = NULL, *arg = NULL;
        OciRoute route = route_parse(req->url, &name, &arg);
        req->route = route >= 0 ? route_label[route] : "v2_other";
        req->repo = name;

        if (route < 0)
                return request_reply_error(req, 404, "NOT_FOUND", NULL, "no such endpoint: %s", req->url);

        if (route == ROUTE_TOKEN)
                return token_route(req);
        if (route == ROUTE_BASE) {
                if (!method_is(req, "GET") && !method_is(req, "HEAD"))
                        return reply_method_not_allowed(req, "GET, HEAD");
                /* with auth on, the base answers 200 only to credentials: the client's cue to sign in */
                if (request_auth_enabled(req) && !req->identity.credentials)
                        return request_reply_unauthorized(req, NULL, NULL, "authentication required");
                req->resp_bytes = 2;
                struct MHD_Response *resp = MHD_create_response_from_buffer(2, (void *) "{}", MHD_RESPMEM_PERSISTENT);
                response_header(resp, "Content-Type", "application/json");
                return request_reply(req, 200, resp);
        }
        if (route == ROUTE_CATALOG)
                return catalog(req);

        if (!name || strlen(name) > REPO_NAME_MAX || !repo_name_is_valid(name)) {
                free(arg);
                return reply_error(req, OCI_NAME_INVALID, json_pack("{s:s}", "name", name ? name : ""),
                                   "invalid repository name: lower-case components [a-z0-9] separated by '.', '_', '__' "
                                   "or '-', joined with '/', at most %d characters",
                                   REPO_NAME_MAX);
        }

        const char *action = route_action(route, req->method);
        if (action && !request_authorize(req, name, action)) {
                free(arg);
                return;
        }

        switch (route) {
        case ROUTE_MANIFEST:
                req->ref = arg;
                return manifest_route(req);
        case ROUTE_BLOB:
                req->ref = arg;
                return blob_route(req);
        case ROUTE_UPLOAD_START:
                free(arg);
                return upload_start(req);
        case ROUTE_UPLOAD:
                req->upload_uuid = arg;
                return upload_session(req);
        case ROUTE_TAGS:
                free(arg);
                return tags_list(req);
        case ROUTE_REFERRERS:
                req->ref = arg;
                return referrers(req);
        default:
                free(arg);
                return request_reply_error(req, 404, "NOT_FOUND", NULL, "no such endpoint: %s", req->url);
        }
}
