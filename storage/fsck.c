/* SPDX-License-Identifier: MIT */
/* fsck: re-hash every blob, cross-check index records and files, find manifests with missing
 * children and stale temporary/upload files. --repair quarantines files (never deletes content)
 * and drops records that point at nothing. Meant for a store whose server is stopped. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "common/util.h"
#include "storage/store-internal.h"

typedef struct Fsck {
        Store *store;
        bool repair;
        FsckReport *report;
        char *quarantine; /* created on first use */
        int64_t started;
        int64_t gc_sweep_mark_start; /* meta "gc/sweep": a GC sweep was interrupted (0 = none) */
} Fsck;

static void problem(Fsck *f, const char *kind, const char *digest, const char *path, const char *detail) {
        json_t *p = json_pack("{s:s, s:s}", "kind", kind, "detail", strempty(detail));
        if (!p)
                return;
        if (digest)
                json_object_set_new(p, "digest", json_string(digest));
        if (path)
                json_object_set_new(p, "path", json_string(path));
        json_array_append_new(f->report->problems, p);
        log_warning("fsck: %s %s: %s", kind, digest ? digest : strempty(path), strempty(detail));
}

/* Where name goes in <root>/quarantine/<time>/ (created on first use; a name taken gets a random
 * suffix), malloc()ed, or NULL. */
static char *quarantine_path(Fsck *f, const char *name) {
        if (!f->quarantine) {
                char ts[32];
                format_timestamp(ts, sizeof ts, f->started);
                f->quarantine = strdup_printf("%s/quarantine/%s", f->store->root, ts);
                if (!f->quarantine)
                        return NULL;
                int r = mkdir_p(f->quarantine, 0755);
                if (r < 0) {
                        log_error_errno(r, "Cannot create %s: %m", f->quarantine);
                        return NULL;
                }
        }
        char *dst = strdup_printf("%s/%s", f->quarantine, name);
        if (dst && access(dst, F_OK) == 0) {
                free(dst);
                char rnd[37];
                uuid_random(rnd);
                dst = strdup_printf("%s/%s.%s", f->quarantine, name, rnd);
        }
        return dst;
}

/* Moves a blob backend's object (at location) into the quarantine as name. */
static int quarantine_blob(Fsck *f, const char *location, const char *name) {
        _cleanup_free_ char *dst = quarantine_path(f, name);
        if (!dst)
                return -ENOMEM;
        int r = blob_backend_quarantine(f->store->blobs, location, dst);
        if (r < 0)
                return r;
        f->report->quarantined++;
        return 0;
}

/* Moves path (of the store's own directories: uploads, tmp) into the quarantine as name. */
static int quarantine(Fsck *f, const char *path, const char *name) {
        _cleanup_free_ char *dst = quarantine_path(f, name);
        if (!dst)
                return -ENOMEM;
        if (rename(path, dst) < 0)
                return log_error_errno(errno, "Cannot move %s to %s: %m", path, dst);
        f->report->quarantined++;
        (void) fsync_path(f->quarantine);
        (void) fsync_directory_of(path);
        return 0;
}

/* ---- blob records */

typedef struct DigestList {
        char **v;
        size_t n, allocated;
} DigestList;

static int list_push(DigestList *l, const char *s, size_t len) {
        if (l->n + 2 > l->allocated) {
                size_t na = l->allocated ? l->allocated * 2 : 64;
                char **v = realloc(l->v, na * sizeof(char *));
                if (!v)
                        return -ENOMEM;
                l->v = v;
                l->allocated = na;
        }
        l->v[l->n] = strndup(s, len);
        if (!l->v[l->n])
                return -ENOMEM;
        l->v[++l->n] = NULL;
        return 0;
}

static int collect_keys_cb(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        return list_push(userdata, key, klen);
}

static int check_blob_records(Fsck *f) {
        DigestList l = {};
        int r = store_kv_iterate(f->store, NULL, INDEX_BLOB, NULL, 0, NULL, 0, collect_keys_cb, &l);
        if (r < 0) {
                strv_free(l.v);
                return r;
        }
        for (size_t i = 0; i < l.n; i++) {
                const char *digest = l.v[i];
                BlobInfo bi;
                if (digest_parse(digest, NULL) < 0) {
                        problem(f, "invalid_record", digest, NULL, "blob record with a malformed digest");
                        if (f->repair)
                                store_kv_delete(f->store, INDEX_BLOB, digest, strlen(digest));
                        continue;
                }
                if (store_blob_info(f->store, digest, &bi) < 0) {
                        problem(f, "invalid_record", digest, NULL, "blob record does not decode");
                        continue;
                }
                _cleanup_free_ char *path = store_blob_location(f->store, digest);
                if (!path) {
                        strv_free(l.v);
                        return -ENOMEM;
                }
                uint64_t bytes = 0;
                store_digest_lock(f->store, digest);
                r = blob_file_verify(f->store, digest, &bi, &bytes);
                f->report->blobs_checked++;
                f->report->bytes_checked += bytes;
                if (r == -ENOENT) {
                        f->report->records_without_file++;
                        problem(f, "record_without_file", digest, path, "index record but no blob file");
                        if (f->repair)
                                store_kv_delete(f->store, INDEX_BLOB, digest, strlen(digest));
                } else if (r == -EBADMSG) {
                        f->report->corrupt_blobs++;
                        problem(f, "corrupt_blob", digest, path, "content does not hash to its name");
                        if (f->repair) {
                                _cleanup_free_ char *name = strdup_printf("corrupt-%s", digest);
                                if (name && quarantine_blob(f, path, name) >= 0)
                                        store_kv_delete(f->store, INDEX_BLOB, digest, strlen(digest));
                        }
                } else if (r < 0) {
                        problem(f, "read_error", digest, path, strerror(-r));
                }
                store_digest_unlock(f->store, digest);
        }
        strv_free(l.v);
        return 0;
}

/* ---- blob files */

static void stray_file(Fsck *f, const char *location) {
        f->report->stale_temp_files++;
        problem(f, "stale_temp_file", NULL, location, "unexpected file in the blob store");
        if (f->repair) {
                const char *slash = strrchr(location, '/');
                _cleanup_free_ char *q = strdup_printf("stray-%s", slash ? slash + 1 : location);
                if (q)
                        quarantine_blob(f, location, q);
        }
}

static int check_blob_file_cb(void *userdata, const StoreBlobFile *bf) {
        Fsck *f = userdata;
        if (!bf->digest) {
                stray_file(f, bf->location);
                return 0;
        }
        const char *digest = bf->digest;
        store_digest_lock(f->store, digest);
        bool known = store_blob_info(f->store, digest, NULL) >= 0;
        int64_t mtime;
        if (!known && f->gc_sweep_mark_start > 0 && store_blob_file_stat(f->store, bf, NULL, &mtime) >= 0 &&
            mtime < f->gc_sweep_mark_start) {
                /* gc/gc.h: an interrupted sweep removed the record, not yet the file; the next
                 * GC's reconcile collects it. Not a problem. */
                log_info("fsck: %s: left by an interrupted GC sweep, collected by the next GC", digest);
                known = true;
        }
        if (!known) {
                f->report->files_without_record++;
                problem(f, "file_without_record", digest, bf->location, "blob file with no index record");
                if (f->repair) {
                        _cleanup_free_ char *name = strdup_printf("orphan-%s", digest);
                        if (name)
                                quarantine_blob(f, bf->location, name);
                }
        }
        store_digest_unlock(f->store, digest);
        return 0;
}

static int check_blob_files(Fsck *f) {
        return store_blob_files_foreach(f->store, check_blob_file_cb, f);
}

/* ---- manifests */

static int check_manifests(Fsck *f) {
        DigestList l = {};
        int r = store_kv_iterate(f->store, NULL, INDEX_MANIFEST, NULL, 0, NULL, 0, collect_keys_cb, &l);
        if (r < 0) {
                strv_free(l.v);
                return r;
        }
        for (size_t i = 0; i < l.n; i++) {
                _cleanup_(manifest_freep) Manifest *m = NULL;
                r = store_manifest_parsed(f->store, NULL, l.v[i], &m);
                if (r < 0) {
                        problem(f, "invalid_manifest", l.v[i], NULL, "stored manifest does not parse");
                        continue;
                }
                json_t *missing = json_array();
                if (m->has_config && store_blob_info(f->store, m->config.digest, NULL) < 0)
                        json_array_append_new(missing, json_string(m->config.digest));
                for (size_t j = 0; j < m->n_layers; j++) {
                        const Descriptor *d = &m->layers[j];
                        if (d->media_type && (strstr(d->media_type, "foreign") || strstr(d->media_type, "nondistributable")))
                                continue;
                        if (store_blob_info(f->store, d->digest, NULL) < 0)
                                json_array_append_new(missing, json_string(d->digest));
                }
                for (size_t j = 0; j < m->n_manifests; j++)
                        if (store_kv_get(f->store, NULL, INDEX_MANIFEST, m->manifests[j].digest,
                                         strlen(m->manifests[j].digest), NULL, NULL) < 0)
                                json_array_append_new(missing, json_string(m->manifests[j].digest));
                if (json_array_size(missing) > 0) {
                        f->report->manifests_missing_children++;
                        _cleanup_free_ char *list = json_dumps(missing, JSON_COMPACT);
                        _cleanup_free_ char *detail = strdup_printf("missing children %s (re-push them to fix)",
                                                                    strempty(list));
                        problem(f, "manifest_missing_children", l.v[i], NULL, detail);
                }
                json_decref(missing);
        }
        strv_free(l.v);
        return 0;
}

/* ---- repository links: a manifest is pullable from a repository only if every child it names
 * (config, layers, index entries) is linked there too */

typedef struct RepoLink {
        char *repo;
        char *digest;
} RepoLink;

typedef struct RepoLinkList {
        RepoLink *v;
        size_t n, allocated;
} RepoLinkList;

static void repo_link_list_done(RepoLinkList *l) {
        for (size_t i = 0; i < l->n; i++) {
                free(l->v[i].repo);
                free(l->v[i].digest);
        }
        free(l->v);
        *l = (RepoLinkList) {};
}

static int repo_link_push(RepoLinkList *l, const char *repo, const char *digest, size_t dlen) {
        if (l->n == l->allocated) {
                size_t na = l->allocated ? l->allocated * 2 : 64;
                RepoLink *v = realloc(l->v, na * sizeof(RepoLink));
                if (!v)
                        return -ENOMEM;
                l->v = v;
                l->allocated = na;
        }
        RepoLink *e = &l->v[l->n];
        e->repo = strdup(repo);
        e->digest = strndup(digest, dlen);
        if (!e->repo || !e->digest) {
                free(e->repo);
                free(e->digest);
                return -ENOMEM;
        }
        l->n++;
        return 0;
}

/* keys repo\0digest */
static int collect_repo_links_cb(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        const char *nul = memchr(key, 0, klen);
        if (!nul || nul == key || (size_t) (nul - key) + 1 >= klen)
                return 0;
        return repo_link_push(userdata, key, nul + 1, klen - (size_t) (nul - key) - 1);
}

static bool repo_has_link(Store *s, const char *repo, const char *digest) {
        size_t kl;
        _cleanup_free_ char *k = index_key_join(&kl, repo, digest, NULL);
        return k && (store_kv_get(s, NULL, INDEX_REPO_BLOB, k, kl, NULL, NULL) >= 0 ||
                     store_kv_get(s, NULL, INDEX_REPO_MANIFEST, k, kl, NULL, NULL) >= 0);
}

/* One repository (other than repo) where digest is linked, for the repair hint; NULL if none. */
static const char *linked_elsewhere(const RepoLinkList *links, const char *repo, const char *digest) {
        for (size_t i = 0; i < links->n; i++)
                if (streq(links->v[i].digest, digest) && !streq(links->v[i].repo, repo))
                        return links->v[i].repo;
        return NULL;
}

static void report_unlinked(Fsck *f, const RepoLink *m, const char *const *unlinked, const RepoLinkList *links) {
        f->report->manifests_unlinked_children++;
        _cleanup_(json_decrefp) json_t *children = json_array();
        _cleanup_free_ char *list = NULL;
        for (const char *const *c = unlinked; *c; c++) {
                const char *other = linked_elsewhere(links, m->repo, *c);
                _cleanup_free_ char *item = other ? strdup_printf("%s (linked in %s)", *c, other)
                                                  : strdup_printf("%s (linked nowhere)", *c);
                char *joined = item ? strdup_printf("%s%s%s", strempty(list), list ? ", " : "", item) : NULL;
                free(list);
                list = joined;
                json_array_append_new(children, json_string(*c));
        }
        _cleanup_free_ char *detail = strdup_printf(
                "in %s, children not linked there: %s; its pulls fail. %sFix without deleting anything: link "
                "each blob back with POST /v2/%s/blobs/uploads/?mount=<digest>[&from=<repository that has it>], "
                "PUT a child manifest into %s again, or push the image again",
                m->repo, strempty(list), f->repair ? "Not repaired (fsck neither deletes a manifest nor links content on its own). " : "",
                m->repo, m->repo);
        json_t *p = json_pack("{s:s, s:s, s:s, s:s, s:O}", "kind", "manifest_unlinked_children", "digest", m->digest,
                              "repo", m->repo, "detail", strempty(detail), "children", children);
        if (p)
                json_array_append_new(f->report->problems, p);
        log_warning("fsck: manifest_unlinked_children %s: %s", m->digest, strempty(detail));
}

static int check_repo_links(Fsck *f) {
        RepoLinkList manifests = {}, links = {};
        int r = store_kv_iterate(f->store, NULL, INDEX_REPO_MANIFEST, NULL, 0, NULL, 0, collect_repo_links_cb, &manifests);
        bool links_read = false;
        for (size_t i = 0; r >= 0 && i < manifests.n; i++) {
                const RepoLink *m = &manifests.v[i];
                _cleanup_strv_free_ char **children = NULL;
                if (manifest_record_children(f->store, m->digest, &children) < 0)
                        continue; /* no manifest record: check_manifests' and GC's concern */
                size_t n = 0;
                for (char **c = children; *c; c++)
                        n++;
                _cleanup_free_ const char **unlinked = calloc(n + 1, sizeof(char *)); /* borrowed from children */
                if (!unlinked) {
                        r = -ENOMEM;
                        break;
                }
                n = 0;
                for (char **c = children; *c; c++)
                        if (!repo_has_link(f->store, m->repo, *c))
                                unlinked[n++] = *c;
                if (n == 0)
                        continue;
                if (!links_read) {
                        /* where else each is linked, for the hint: one scan, only once a problem is found */
                        r = store_kv_iterate(f->store, NULL, INDEX_REPO_BLOB, NULL, 0, NULL, 0, collect_repo_links_cb, &links);
                        if (r >= 0)
                                r = store_kv_iterate(f->store, NULL, INDEX_REPO_MANIFEST, NULL, 0, NULL, 0,
                                                     collect_repo_links_cb, &links);
                        links_read = true;
                        if (r < 0)
                                break;
                }
                report_unlinked(f, m, unlinked, &links);
        }
        repo_link_list_done(&manifests);
        repo_link_list_done(&links);
        return r;
}

/* ---- uploads and temporary files */

static int check_uploads(Fsck *f) {
        _cleanup_free_ char *dir = strdup_printf("%s/uploads", f->store->root);
        if (!dir)
                return -ENOMEM;
        DIR *d = opendir(dir);
        if (d) {
                struct dirent *de;
                while ((de = readdir(d))) {
                        if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                                continue;
                        if (uuid_is_valid(de->d_name) &&
                            store_kv_get(f->store, NULL, INDEX_UPLOAD, de->d_name, strlen(de->d_name), NULL, NULL) >= 0)
                                continue;
                        _cleanup_free_ char *path = strdup_printf("%s/%s", dir, de->d_name);
                        if (!path)
                                break;
                        f->report->stale_temp_files++;
                        problem(f, "stale_upload_file", NULL, path, "upload file without a session record");
                        if (f->repair) {
                                _cleanup_free_ char *name = strdup_printf("upload-%s", de->d_name);
                                if (name)
                                        quarantine(f, path, name);
                        }
                }
                closedir(d);
        }

        /* session records whose file is gone */
        DigestList l = {};
        int r = store_kv_iterate(f->store, NULL, INDEX_UPLOAD, NULL, 0, NULL, 0, collect_keys_cb, &l);
        if (r < 0) {
                strv_free(l.v);
                return r;
        }
        for (size_t i = 0; i < l.n; i++) {
                _cleanup_free_ char *path = strdup_printf("%s/%s", dir, l.v[i]);
                if (path && access(path, F_OK) < 0 && errno == ENOENT) {
                        f->report->records_without_file++;
                        problem(f, "upload_without_file", NULL, path, "upload session record without its file");
                        if (f->repair)
                                store_kv_delete(f->store, INDEX_UPLOAD, l.v[i], strlen(l.v[i]));
                }
        }
        strv_free(l.v);

        _cleanup_free_ char *tmp = strdup_printf("%s/tmp", f->store->root);
        if (!tmp)
                return -ENOMEM;
        d = opendir(tmp);
        if (d) {
                struct dirent *de;
                while ((de = readdir(d))) {
                        if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                                continue;
                        _cleanup_free_ char *path = strdup_printf("%s/%s", tmp, de->d_name);
                        struct stat st;
                        if (!path || lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
                                continue;
                        f->report->stale_temp_files++;
                        problem(f, "stale_temp_file", NULL, path, "leftover temporary file");
                        if (f->repair) {
                                _cleanup_free_ char *name = strdup_printf("tmp-%s", de->d_name);
                                if (name)
                                        quarantine(f, path, name);
                        }
                }
                closedir(d);
        }
        return 0;
}

int store_fsck(Store *s, bool repair, FsckReport *ret) {
        int r;
        if (!ret)
                return -EINVAL;
        if (repair && s->read_only)
                return -EROFS;
        *ret = (FsckReport) { .problems = json_array() };
        if (!ret->problems)
                return -ENOMEM;
        Fsck f = { .store = s, .repair = repair, .report = ret, .started = clock_now_ns() };
        _cleanup_free_ char *sweep = NULL;
        if (store_gc_sweep_intent_get(s, &sweep) >= 0) {
                json_t *j = json_loads(sweep, 0, NULL);
                f.gc_sweep_mark_start = json_integer_value(json_object_get(j, "mark_start"));
                json_decref(j);
        }

        r = check_blob_records(&f);
        if (r >= 0)
                r = check_blob_files(&f);
        if (r >= 0)
                r = check_manifests(&f);
        if (r >= 0)
                r = check_repo_links(&f);
        if (r >= 0)
                r = check_uploads(&f);
        if (r >= 0 && !s->read_only) {
                json_t *detail = json_pack("{s:I, s:I, s:b}", "problems", (json_int_t) json_array_size(ret->problems),
                                           "quarantined", (json_int_t) ret->quarantined, "repair", repair);
                (void) store_audit(s, "fsck", repair ? "fsck.repair" : "fsck", s->root,
                                   json_array_size(ret->problems) ? "problems" : "ok", detail);
                json_decref(detail);
        }
        free(f.quarantine);
        return r;
}

void fsck_report_done(FsckReport *r) {
        if (!r)
                return;
        json_decref(r->problems);
        r->problems = NULL;
}
