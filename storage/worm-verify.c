/* SPDX-License-Identifier: MIT */
/* Offline verification of WORM bundles, and their listing (the export: worm.c). */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/util.h"
#include "storage/holds.h"
#include "storage/storage.h"
#include "storage/worm-internal.h"

/* ------------------------------------------------------------------ verify */

static bool relpath_is_safe(const char *p) {
        if (!p || !*p || p[0] == '/')
                return false;
        for (const char *c = p; *c;) {
                const char *slash = strchrnul(c, '/');
                size_t n = (size_t) (slash - c);
                if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
                        return false;
                c = *slash ? slash + 1 : slash;
        }
        return true;
}

typedef struct Verify {
        const char *bundle;
        int dfd;
        json_t *report;
        json_t *listed;   /* path -> {size, sha256} from bundle.json (or SHA256SUMS alone) */
        json_t *missing, *extra, *altered, *problems;
        uint64_t files_checked, bytes_checked;
} Verify;

static void problem(Verify *v, const char *fmt, ...) _printf_(2, 3);
static void problem(Verify *v, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        char *s = NULL;
        if (vasprintf(&s, fmt, ap) >= 0) {
                json_array_append_new(v->problems, json_string(s));
                free(s);
        }
        va_end(ap);
}

static int hash_file_at(int dfd, const char *path, char hex[65], uint64_t *ret_size) {
        _cleanup_close_ int fd = openat(dfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADF;
        char d[DIGEST_MAX_LEN];
        int r = digest_fd(DIGEST_SHA256, fd, d, ret_size);
        if (r < 0)
                return r;
        snprintf(hex, 65, "%s", digest_hex(d));
        return 0;
}

static void check_file(Verify *v, const char *path, uint64_t want_size, bool have_size, const char *want_hex) {
        char hex[65];
        uint64_t size = 0;
        int r = hash_file_at(v->dfd, path, hex, &size);
        if (r == -ENOENT) {
                json_array_append_new(v->missing, json_string(path));
                return;
        }
        if (r < 0) {
                json_array_append_new(v->altered, json_pack("{s:s, s:s}", "path", path, "error", strerror(-r)));
                return;
        }
        v->files_checked++;
        v->bytes_checked += size;
        if (!streq(hex, want_hex) || (have_size && size != want_size))
                json_array_append_new(v->altered,
                                      json_pack("{s:s, s:s, s:s, s:I, s:I}", "path", path, "expected_sha256", want_hex,
                                                "actual_sha256", hex, "expected_size", (json_int_t) want_size,
                                                "actual_size", (json_int_t) size));
        /* content-addressed files must also hash to their own name */
        const char *name = startswith(path, "blobs/sha256/");
        if (name && !streq(name, hex) && streq(hex, want_hex))
                problem(v, "%s does not hash to its name (content %s)", path, hex);
}

/* "<64 hex>  <path>" or "<64 hex> *<path>" per line. */
static int parse_sums(Verify *v, const char *data, size_t len, json_t *ret) {
        const char *p = data, *end = data + len;
        unsigned line = 0;
        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t) (end - p));
                const char *le = nl ? nl : end;
                line++;
                size_t n = (size_t) (le - p);
                if (n == 0) {
                        p = le + 1;
                        continue;
                }
                bool ok = n > 66 && (p[65] == ' ' || p[65] == '*') && p[64] == ' ';
                for (size_t i = 0; ok && i < 64; i++)
                        ok = (p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f');
                if (!ok)
                        problem(v, "SHA256SUMS line %u is malformed", line);
                else {
                        _cleanup_free_ char *path = strndup(p + 66, n - 66);
                        json_object_set_new(ret, path, json_stringn(p, 64));
                }
                p = le + 1;
        }
        return 0;
}

static int walk(Verify *v, int dfd, const char *prefix) {
        _cleanup_close_ int fd = openat(dfd, prefix[0] ? prefix : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        DIR *d = fdopendir(fd);
        if (!d)
                return -errno;
        fd = -1;
        struct dirent *de;
        int r = 0;
        while ((de = readdir(d))) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                _cleanup_free_ char *rel = prefix[0] ? strdup_printf("%s/%s", prefix, de->d_name) : strdup(de->d_name);
                if (!rel) {
                        r = -ENOMEM;
                        break;
                }
                struct stat st;
                if (fstatat(v->dfd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                if (S_ISDIR(st.st_mode)) {
                        r = walk(v, v->dfd, rel);
                        if (r < 0)
                                break;
                        continue;
                }
                if (!prefix[0] && (streq(rel, BUNDLE_JSON) || streq(rel, SHA256SUMS) || streq(rel, MARK_INCOMPLETE) ||
                                   streq(rel, MARK_FAILED)))
                        continue;
                if (!S_ISREG(st.st_mode) || !json_object_get(v->listed, rel))
                        json_array_append_new(v->extra, json_string(rel));
        }
        closedir(d);
        return r;
}

static bool file_exists_at(int dfd, const char *p) {
        return faccessat(dfd, p, F_OK, AT_SYMLINK_NOFOLLOW) >= 0;
}

int worm_verify(const char *bundle_path, json_t **ret_report) {
        pthread_once(&worm_metrics_once, worm_metrics_init);
        Verify v = { .bundle = bundle_path, .dfd = -1 };
        int r;
        v.report = json_object();
        v.listed = json_object();
        v.missing = json_array();
        v.extra = json_array();
        v.altered = json_array();
        v.problems = json_array();
        _cleanup_(json_decrefp) json_t *sums = json_object();
        _cleanup_(json_decrefp) json_t *bj = NULL;
        _cleanup_free_ char *bjpath = NULL, *bjdata = NULL, *spath = NULL, *sdata = NULL;
        size_t bjlen = 0, slen = 0;
        bool incomplete = false;
        if (!v.report || !v.listed || !v.missing || !v.extra || !v.altered || !v.problems || !sums) {
                r = -ENOMEM;
                goto finish;
        }
        json_object_set_new(v.report, "bundle", json_string(bundle_path));
        v.dfd = open(bundle_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (v.dfd < 0) {
                r = -errno;
                problem(&v, "cannot open bundle %s: %s", bundle_path, strerror(-r));
                goto finish;
        }

        if (file_exists_at(v.dfd, MARK_INCOMPLETE)) {
                incomplete = true;
                problem(&v, "the bundle is marked incomplete (%s exists): its export did not finish", MARK_INCOMPLETE);
        }
        if (file_exists_at(v.dfd, MARK_FAILED)) {
                incomplete = true;
                _cleanup_free_ char *why = NULL;
                size_t wl;
                _cleanup_free_ char *fp = strdup_printf("%s/%s", bundle_path, MARK_FAILED);
                if (fp && read_full_file(fp, 4096, &why, &wl) >= 0) {
                        while (wl > 0 && (why[wl - 1] == '\n'))
                                why[--wl] = 0;
                        for (char *c = why; *c; c++)
                                if (*c == '\n')
                                        *c = ' ';
                }
                problem(&v, "the export failed: %s", why ? why : "(see FAILED)");
        }

        /* bundle.json: the listing */
        bjpath = strdup_printf("%s/%s", bundle_path, BUNDLE_JSON);
        if (!bjpath) {
                r = -ENOMEM;
                goto finish;
        }
        r = read_full_file(bjpath, BUNDLE_JSON_MAX, &bjdata, &bjlen);
        if (r == -ENOENT) {
                incomplete = true;
                problem(&v, "%s is missing", BUNDLE_JSON);
        } else if (r < 0)
                problem(&v, "cannot read %s: %s", BUNDLE_JSON, strerror(-r));
        else {
                json_error_t je;
                bj = json_loadb(bjdata, bjlen, 0, &je);
                json_t *files = json_object_get(bj, "files");
                if (!json_is_object(bj) || !json_is_array(files))
                        problem(&v, "%s is not a bundle listing (%s)", BUNDLE_JSON, bj ? "no files array" : je.text);
                else {
                        static const char *const keep[] = { "case_id", "digest", "registry_id", "exported_at" };
                        for (size_t k = 0; k < ELEMENTSOF(keep); k++)
                                if (json_object_get(bj, keep[k]))
                                        json_object_set(v.report, keep[k], json_object_get(bj, keep[k]));
                        size_t i;
                        json_t *f;
                        json_array_foreach(files, i, f) {
                                const char *p = json_string_value(json_object_get(f, "path"));
                                const char *h = json_string_value(json_object_get(f, "sha256"));
                                if (!relpath_is_safe(p) || !h || strlen(h) != 64 ||
                                    !json_is_integer(json_object_get(f, "size"))) {
                                        problem(&v, "%s: entry %zu is malformed", BUNDLE_JSON, i);
                                        continue;
                                }
                                if (streq(p, BUNDLE_JSON) || streq(p, SHA256SUMS)) {
                                        problem(&v, "%s lists %s", BUNDLE_JSON, p);
                                        continue;
                                }
                                json_object_set_new(v.listed, p, json_pack("{s:s, s:O}", "sha256", h, "size",
                                                                           json_object_get(f, "size")));
                        }
                }
        }

        /* SHA256SUMS: must agree with bundle.json and cover bundle.json itself */
        spath = strdup_printf("%s/%s", bundle_path, SHA256SUMS);
        if (!spath) {
                r = -ENOMEM;
                goto finish;
        }
        r = read_full_file(spath, BUNDLE_JSON_MAX, &sdata, &slen);
        if (r == -ENOENT) {
                incomplete = true;
                problem(&v, "%s is missing", SHA256SUMS);
        } else if (r < 0)
                problem(&v, "cannot read %s: %s", SHA256SUMS, strerror(-r));
        else
                parse_sums(&v, sdata, slen, sums);

        bool have_listing = json_object_size(v.listed) > 0 || bj;
        const char *p;
        json_t *h;
        json_object_foreach(sums, p, h) {
                if (!relpath_is_safe(p)) {
                        problem(&v, "%s names an unsafe path '%s'", SHA256SUMS, p);
                        continue;
                }
                if (streq(p, BUNDLE_JSON)) {
                        if (bjdata)
                                check_file(&v, BUNDLE_JSON, 0, false, json_string_value(h));
                        continue;
                }
                json_t *l = json_object_get(v.listed, p);
                if (!l) {
                        if (have_listing)
                                problem(&v, "%s lists %s, which %s does not", SHA256SUMS, p, BUNDLE_JSON);
                        else /* no bundle.json: SHA256SUMS is all we have */
                                json_object_set_new(v.listed, p, json_pack("{s:O}", "sha256", h));
                } else if (!streq(json_string_value(json_object_get(l, "sha256")), json_string_value(h)))
                        problem(&v, "%s and %s disagree on %s", SHA256SUMS, BUNDLE_JSON, p);
        }
        if (sdata) {
                if (bjdata && !json_object_get(sums, BUNDLE_JSON))
                        problem(&v, "%s does not cover %s", SHA256SUMS, BUNDLE_JSON);
                json_t *l;
                json_object_foreach(v.listed, p, l)
                        if (!json_object_get(sums, p))
                                problem(&v, "%s does not list %s", SHA256SUMS, p);
        }

        /* re-hash every listed file */
        json_t *l;
        json_object_foreach(v.listed, p, l) {
                json_t *sz = json_object_get(l, "size");
                check_file(&v, p, (uint64_t) json_integer_value(sz), sz != NULL,
                           json_string_value(json_object_get(l, "sha256")));
        }

        /* the held content itself must be there */
        const char *held = json_string_value(json_object_get(bj, "digest"));
        if (held && digest_parse(held, NULL) >= 0) {
                _cleanup_free_ char *rel = worm_blob_relpath(held);
                if (rel && !json_object_get(v.listed, rel))
                        problem(&v, "%s does not list the held digest's file %s", BUNDLE_JSON, rel);
        }

        r = walk(&v, v.dfd, "");
        if (r < 0)
                problem(&v, "cannot list the bundle: %s", strerror(-r));
        r = 0;

finish:;
        bool ok = r >= 0 && !incomplete && json_array_size(v.missing) == 0 && json_array_size(v.extra) == 0 &&
                  json_array_size(v.altered) == 0 && json_array_size(v.problems) == 0;
        if (v.report) {
                json_object_set_new(v.report, "status", json_string(ok ? "ok" : incomplete ? "incomplete" : "failed"));
                json_object_set_new(v.report, "complete", json_boolean(!incomplete && r >= 0));
                json_object_set_new(v.report, "files_checked", json_integer((json_int_t) v.files_checked));
                json_object_set_new(v.report, "bytes_checked", json_integer((json_int_t) v.bytes_checked));
                json_object_set(v.report, "missing", v.missing);
                json_object_set(v.report, "extra", v.extra);
                json_object_set(v.report, "altered", v.altered);
                json_object_set(v.report, "problems", v.problems);
        }
        if (!ok)
                metrics_counter_add(M_VERIFY_FAIL, NULL, 1);
        if (ret_report)
                *ret_report = steal_pointer(&v.report);
        json_decref(v.report);
        json_decref(v.listed);
        json_decref(v.missing);
        json_decref(v.extra);
        json_decref(v.altered);
        json_decref(v.problems);
        if (v.dfd >= 0)
                close(v.dfd);
        if (r < 0)
                return r;
        return ok ? 0 : -EBADMSG;
}

/* ------------------------------------------------------------------ listing */

static int dir_names(const char *path, char ***ret) {
        struct dirent **list = NULL;
        int n = scandir(path, &list, NULL, alphasort);
        if (n < 0)
                return -errno;
        char **names = calloc((size_t) n + 1, sizeof(char *));
        size_t k = 0;
        for (int i = 0; i < n; i++) {
                if (names && list[i]->d_name[0] != '.') {
                        char *full = strdup_printf("%s/%s", path, list[i]->d_name);
                        struct stat st;
                        if (full && stat(full, &st) >= 0 && S_ISDIR(st.st_mode))
                                names[k++] = strdup(list[i]->d_name);
                        free(full);
                }
                free(list[i]);
        }
        free(list);
        if (!names)
                return -ENOMEM;
        *ret = names;
        return (int) k;
}

static json_t *bundle_entry(const char *case_dir, const char *case_id, const char *name) {
        _cleanup_free_ char *bundle = strdup_printf("%s/%s", case_dir, name);
        if (!bundle)
                return NULL;
        json_t *o = json_pack("{s:s, s:s, s:s}", "bundle", bundle, "case_id", case_id, "name", name);
        if (!o)
                return NULL;
        _cleanup_free_ char *bjp = strdup_printf("%s/%s", bundle, BUNDLE_JSON);
        _cleanup_free_ char *data = NULL;
        size_t len;
        bool complete = false;
        if (bjp && read_full_file(bjp, BUNDLE_JSON_MAX, &data, &len) >= 0) {
                _cleanup_(json_decrefp) json_t *bj = json_loadb(data, len, 0, NULL);
                if (bj) {
                        json_object_set(o, "digest", json_object_get(bj, "digest"));
                        json_object_set(o, "exported_at", json_object_get(bj, "exported_at"));
                        json_object_set(o, "registry_id", json_object_get(bj, "registry_id"));
                        json_object_set_new(o, "files", json_integer((json_int_t) json_array_size(json_object_get(bj, "files"))));
                        json_object_set(o, "bytes", json_object_get(bj, "total_bytes"));
                        complete = true;
                }
        }
        int dfd = open(bundle, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
                if (file_exists_at(dfd, MARK_INCOMPLETE) || file_exists_at(dfd, MARK_FAILED) ||
                    !file_exists_at(dfd, SHA256SUMS))
                        complete = false;
                close(dfd);
        }
        if (!json_object_get(o, "digest")) {
                /* incomplete: name ends in -<hex12>[-N] */
                const char *dash = strchr(name, '-');
                if (dash)
                        json_object_set_new(o, "digest_short", json_stringn(dash + 1, strnlen(dash + 1, 12)));
        }
        json_object_set_new(o, "complete", json_boolean(complete));
        return o;
}

int worm_bundles_list(const char *path, const char *case_id, json_t **ret) {
        if (!path || !*path)
                return -EDESTADDRREQ;
        if (case_id && !case_id_is_valid(case_id))
                return -EINVAL;
        _cleanup_(json_decrefp) json_t *out = json_array();
        if (!out)
                return -ENOMEM;
        _cleanup_strv_free_ char **cases = NULL;
        if (case_id) {
                cases = calloc(2, sizeof(char *));
                if (!cases || !(cases[0] = strdup(case_id)))
                        return -ENOMEM;
        } else {
                int r = dir_names(path, &cases);
                if (r < 0)
                        return r;
        }
        for (char **c = cases; *c; c++) {
                if (!case_id_is_valid(*c))
                        continue;
                _cleanup_free_ char *case_dir = strdup_printf("%s/%s", path, *c);
                _cleanup_strv_free_ char **names = NULL;
                if (!case_dir)
                        return -ENOMEM;
                int r = dir_names(case_dir, &names);
                if (r == -ENOENT)
                        continue;
                if (r < 0)
                        return r;
                for (char **n = names; *n; n++) {
                        json_t *o = bundle_entry(case_dir, *c, *n);
                        if (!o)
                                return -ENOMEM;
                        json_array_append_new(out, o);
                }
        }
        *ret = steal_pointer(&out);
        return 0;
}

int worm_find_verified(const char *path, const char *case_id, const char *digest, char **ret_bundle) {
        _cleanup_(json_decrefp) json_t *list = NULL;
        int r = worm_bundles_list(path, case_id, &list);
        if (r < 0)
                return r;
        /* newest first: names start with the export time */
        for (size_t i = json_array_size(list); i > 0; i--) {
                json_t *b = json_array_get(list, i - 1);
                if (!json_is_true(json_object_get(b, "complete")) ||
                    !streq_ptr(json_string_value(json_object_get(b, "digest")), digest))
                        continue;
                const char *bundle = json_string_value(json_object_get(b, "bundle"));
                if (worm_verify(bundle, NULL) == 0) {
                        *ret_bundle = strdup(bundle);
                        return *ret_bundle ? 0 : -ENOMEM;
                }
        }
        return -ENOENT;
}
