/* SPDX-License-Identifier: MIT */
/* Upload sessions: streamed to <root>/uploads/<uuid> and hashed incrementally; an in-memory table
 * gives one request at a time exclusive use and keeps the live hasher. The file is open only
 * while a request holds the session: a client that opens sessions and never writes cannot use up
 * the process's descriptors. Sessions are counted per client and in total, under limits the caller
 * passes (store_upload_begin). After a restart a session is resumed from the bytes on disk
 * (re-hashed once). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "common/util.h"
#include "storage/store-internal.h"

#define REHASH_BUFFER (256U * 1024U)
/* Open sessions started by one client (store-internal.h: Store.upload_clients) */
struct UploadClient {
        UploadClient *next;
        unsigned n;
        char name[]; /* "" for sessions whose record names no client */
};

struct Upload {
        Upload *next;
        Store *store;
        char uuid[37];
        char *repo;
        char *client;   /* who started it (counted in Store.upload_clients); may be NULL before loading */
        int fd;         /* open while held */
        Hasher *hasher; /* sha256 over bytes [0, offset) */
        uint64_t offset;
        int64_t started;
        int64_t updated;
        bool held;
        bool loaded; /* false: a placeholder claimed while loading or removing */
};

static char *upload_path(Store *s, const char *uuid) {
        return strdup_printf("%s/uploads/%s", s->root, uuid);
}

static Upload *slot_free(Upload *u) {
        if (!u)
                return NULL;
        if (u->fd >= 0)
                close(u->fd);
        hasher_free(u->hasher);
        free(u->repo);
        free(u->client);
        free(u);
        return NULL;
}

/* ---- session counts per client, under uploads_lock */

static size_t client_bucket(const char *name) {
        return (size_t) (hash_fnv1a(name, strlen(name), HASH_FNV1A_INIT) % UPLOAD_CLIENT_BUCKETS);
}

static UploadClient **client_find_locked(Store *s, const char *name) {
        UploadClient **p = &s->upload_clients[client_bucket(name)];
        while (*p && !streq((*p)->name, name))
                p = &(*p)->next;
        return p;
}

static unsigned client_sessions_locked(Store *s, const char *name) {
        UploadClient **p = client_find_locked(s, strempty(name));
        return *p ? (*p)->n : 0;
}

static int client_count_locked(Store *s, const char *name) {
        UploadClient **p = client_find_locked(s, strempty(name));
        if (!*p) {
                size_t l = strlen(strempty(name));
                UploadClient *c = calloc(1, sizeof(UploadClient) + l + 1);
                if (!c)
                        return -ENOMEM;
                memcpy(c->name, strempty(name), l + 1);
                *p = c;
        }
        (*p)->n++;
        s->upload_sessions++;
        return 0;
}

static void client_uncount_locked(Store *s, const char *name) {
        UploadClient **p = client_find_locked(s, strempty(name));
        if (!*p)
                return;
        if (s->upload_sessions > 0)
                s->upload_sessions--;
        if (--(*p)->n == 0) {
                UploadClient *c = *p;
                *p = c->next;
                free(c);
        }
}

/* A session ended (committed, cancelled, purged, discarded): it no longer counts. */
static void session_uncount(Store *s, const char *client) {
        pthread_mutex_lock(&s->uploads_lock);
        client_uncount_locked(s, client);
        pthread_mutex_unlock(&s->uploads_lock);
}

static void slot_close_fd(Upload *u) {
        if (u->fd >= 0) {
                close(u->fd);
                u->fd = -1;
        }
}

/* must hold uploads_lock */
static Upload *slot_find(Store *s, const char *uuid) {
        for (Upload *u = s->uploads; u; u = u->next)
                if (streq(u->uuid, uuid))
                        return u;
        return NULL;
}

static void slot_unlink_locked(Store *s, Upload *u) {
        for (Upload **p = &s->uploads; *p; p = &(*p)->next)
                if (*p == u) {
                        *p = u->next;
                        u->next = NULL;
                        return;
                }
}

static void slot_remove(Store *s, Upload *u) {
        pthread_mutex_lock(&s->uploads_lock);
        slot_unlink_locked(s, u);
        pthread_mutex_unlock(&s->uploads_lock);
        slot_free(u);
}

/* Takes exclusive use of uuid: the existing slot, or a new unloaded placeholder. */
static int slot_claim(Store *s, const char *uuid, Upload **ret) {
        pthread_mutex_lock(&s->uploads_lock);
        Upload *u = slot_find(s, uuid);
        if (u) {
                if (u->held) {
                        pthread_mutex_unlock(&s->uploads_lock);
                        return -EBUSY;
                }
                u->held = true;
        } else {
                u = calloc(1, sizeof(Upload));
                if (!u) {
                        pthread_mutex_unlock(&s->uploads_lock);
                        return -ENOMEM;
                }
                u->store = s;
                u->fd = -1;
                u->held = true;
                snprintf(u->uuid, sizeof u->uuid, "%s", uuid);
                u->next = s->uploads;
                s->uploads = u;
        }
        pthread_mutex_unlock(&s->uploads_lock);
        *ret = u;
        return 0;
}

static void slot_unclaim(Store *s, Upload *u) {
        if (!u->loaded) {
                slot_remove(s, u);
                return;
        }
        slot_close_fd(u); /* reopened by the next acquire */
        pthread_mutex_lock(&s->uploads_lock);
        u->held = false;
        pthread_mutex_unlock(&s->uploads_lock);
}

typedef struct UploadRecord {
        char *repo;
        char *client;
        int64_t started, updated;
        uint64_t offset;
} UploadRecord;

static int record_read(Store *s, const char *uuid, UploadRecord *ret) {
        _cleanup_free_ char *v = NULL;
        size_t vl;
        int r = index_get(s, NULL, INDEX_UPLOAD, uuid, strlen(uuid), &v, &vl);
        if (r < 0)
                return r;
        json_t *j = json_loadb(v, vl, 0, NULL);
        const char *repo = json_string_value(json_object_get(j, "repo"));
        if (!repo) {
                json_decref(j);
                return -EBADMSG;
        }
        ret->repo = strdup(repo);
        const char *client = json_string_value(json_object_get(j, "client"));
        ret->client = client ? strdup(client) : NULL;
        ret->started = json_integer_value(json_object_get(j, "started"));
        ret->updated = json_integer_value(json_object_get(j, "updated"));
        ret->offset = (uint64_t) json_integer_value(json_object_get(j, "offset"));
        json_decref(j);
        return ret->repo ? 0 : -ENOMEM;
}

/* Session records are written without syncing the WAL: they survive kill -9 (the WAL write is in
 * the page cache) and a session lost to a power cut is simply unknown to its client, which gets
 * BLOB_UPLOAD_UNKNOWN and starts over. The commit deletes the record in the same synced batch that
 * writes the blob record. */
static int record_write_full(Store *s, const Upload *u, const char *committing) {
        json_t *j = json_pack("{s:s, s:s?, s:I, s:I, s:I, s:s?}", "repo", u->repo, "client", u->client, "started",
                              (json_int_t) u->started, "updated", (json_int_t) u->updated, "offset",
                              (json_int_t) u->offset, "commit", committing);
        char *v = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        if (!v)
                return -ENOMEM;
        _cleanup_(index_batch_freep) IndexBatch *b = index_batch_new();
        int r = -ENOMEM;
        if (b) {
                index_batch_put(b, INDEX_UPLOAD, u->uuid, strlen(u->uuid), v, strlen(v));
                r = index_batch_commit_full(s, b, false);
        }
        free(v);
        return r;
}

static int record_write(Store *s, const Upload *u) {
        return record_write_full(s, u, NULL);
}

static int record_delete(Store *s, const char *uuid) {
        _cleanup_(index_batch_freep) IndexBatch *b = index_batch_new();
        if (!b)
                return -ENOMEM;
        index_batch_delete(b, INDEX_UPLOAD, uuid, strlen(uuid));
        return index_batch_commit_full(s, b, false);
}

/* Counts a new session against the limits: 0, or -EUSERS with the reason in err. */
static int session_count(Store *s, const UploadLimits *lim, StoreError *err) {
        const char *client = lim ? lim->client : NULL;
        int r = 0;
        pthread_mutex_lock(&s->uploads_lock);
        if (lim && lim->max_sessions > 0 && s->upload_sessions >= lim->max_sessions)
                r = store_error_set(err, -EUSERS, OCI_TOOMANYREQUESTS,
                                    "too many upload sessions open in this registry (%u); finish or cancel "
                                    "some (idle ones are purged), then retry", lim->max_sessions);
        else if (lim && lim->max_per_client > 0 && client_sessions_locked(s, client) >= lim->max_per_client)
                r = store_error_set(err, -EUSERS, OCI_TOOMANYREQUESTS,
                                    "too many upload sessions open from this client (%u); finish or cancel "
                                    "some (DELETE the session URL), then retry", lim->max_per_client);
        else
                r = client_count_locked(s, client);
        pthread_mutex_unlock(&s->uploads_lock);
        return r;
}

int store_upload_begin(Store *s, const char *repo, const UploadLimits *limits, char ret_uuid[37], StoreError *err) {
        int r;
        if (s->read_only)
                return store_error_set(err, -EROFS, OCI_UNSUPPORTED, "the store is read-only");
        if (!repo || !repo_name_is_valid(repo))
                return store_error_set(err, -EINVAL, OCI_NAME_INVALID, "invalid repository name");
        const char *client = limits ? limits->client : NULL;
        r = session_count(s, limits, err);
        if (r < 0)
                return r;
        Upload *u = calloc(1, sizeof(Upload));
        if (!u) {
                session_uncount(s, client);
                return -ENOMEM;
        }
        u->store = s;
        u->fd = -1;
        r = uuid_random(u->uuid);
        u->repo = strdup(repo);
        u->client = strdup(strempty(client));
        u->started = u->updated = clock_now_ns();
        if (r >= 0 && (!u->repo || !u->client))
                r = -ENOMEM;
        if (r >= 0)
                r = hasher_new(DIGEST_SHA256, &u->hasher);
        _cleanup_free_ char *path = r >= 0 ? upload_path(s, u->uuid) : NULL;
        if (r >= 0 && !path)
                r = -ENOMEM;
        if (r >= 0) {
                /* created now; opened again by each request that holds the session */
                _cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
                if (fd < 0)
                        r = -errno;
        }
        if (r >= 0) {
                r = record_write(s, u);
                if (r < 0)
                        unlink(path);
        }
        if (r < 0) {
                session_uncount(s, client);
                slot_free(u);
                return store_error_set(err, log_error_errno(r, "Cannot start an upload in %s: %m", repo),
                                       OCI_BLOB_UPLOAD_INVALID, "cannot start an upload session");
        }
        u->loaded = true;
        memcpy(ret_uuid, u->uuid, 37);
        pthread_mutex_lock(&s->uploads_lock);
        u->next = s->uploads;
        s->uploads = u;
        pthread_mutex_unlock(&s->uploads_lock);
        return 0;
}

static int slot_open_fd(Store *s, Upload *u) {
        _cleanup_free_ char *path = upload_path(s, u->uuid);
        if (!path)
                return -ENOMEM;
        u->fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC);
        if (u->fd < 0)
                return errno == ENOENT ? -ENOENT : -errno;
        return 0;
}

/* Loads a claimed placeholder from its record and file (after a restart). */
static int slot_load(Store *s, Upload *u, const char *repo) {
        UploadRecord rec = {};
        int r = record_read(s, u->uuid, &rec);
        if (r < 0)
                return r == -EBADMSG ? -ENOENT : r;
        if (!streq(rec.repo, repo)) {
                free(rec.repo);
                free(rec.client);
                return -ENOENT;
        }
        u->repo = rec.repo;
        u->client = rec.client;
        u->started = rec.started;
        u->updated = rec.updated;
        r = slot_open_fd(s, u);
        if (r < 0)
                return r;
        r = hasher_new(DIGEST_SHA256, &u->hasher);
        if (r < 0)
                return r;
        _cleanup_free_ uint8_t *buf = malloc(REHASH_BUFFER);
        if (!buf)
                return -ENOMEM;
        uint64_t off = 0;
        for (;;) {
                ssize_t n = loop_pread(u->fd, buf, REHASH_BUFFER, (off_t) off);
                if (n < 0)
                        return (int) n;
                if (n == 0)
                        break;
                r = hasher_update(u->hasher, buf, (size_t) n);
                if (r < 0)
                        return r;
                off += (uint64_t) n;
        }
        u->offset = off;
        u->loaded = true;
        return 0;
}

int store_upload_acquire(Store *s, const char *repo, const char *uuid, Upload **ret) {
        if (s->read_only)
                return -EROFS;
        if (!repo || !uuid || !uuid_is_valid(uuid))
                return -ENOENT;
        Upload *u;
        int r = slot_claim(s, uuid, &u);
        if (r < 0)
                return r;
        if (u->loaded) {
                if (!streq(u->repo, repo)) {
                        slot_unclaim(s, u);
                        return -ENOENT;
                }
                r = slot_open_fd(s, u);
                if (r < 0) {
                        slot_unclaim(s, u);
                        return r;
                }
        } else {
                r = slot_load(s, u, repo);
                if (r < 0) {
                        slot_remove(s, u);
                        return r;
                }
        }
        *ret = u;
        return 0;
}

uint64_t upload_offset(Upload *u) {
        return u->offset;
}

const char *upload_uuid(Upload *u) {
        return u->uuid;
}

int64_t upload_started(Upload *u) {
        return u->started;
}

int upload_write(Upload *u, const void *data, size_t n) {
        if (n == 0)
                return 0;
        int r = loop_write(u->fd, data, n);
        if (r < 0) {
                /* keep file and hash in step: drop whatever part of this write landed */
                if (ftruncate(u->fd, (off_t) u->offset) < 0)
                        log_error_errno(errno, "Cannot truncate upload %s after a failed write: %m", u->uuid);
                return r;
        }
        r = hasher_update(u->hasher, data, n);
        if (r < 0)
                return r;
        u->offset += n;
        u->updated = clock_now_ns();
        return 0;
}

void store_upload_release(Store *s, Upload *u) {
        if (!u)
                return;
        /* while still held, so a concurrent cancel cannot be undone by this write */
        (void) record_write(s, u);
        slot_unclaim(s, u);
}

static void upload_discard(Store *s, Upload *u) {
        _cleanup_free_ char *path = upload_path(s, u->uuid);
        if (path)
                unlink(path);
        (void) record_delete(s, u->uuid);
        session_uncount(s, u->client);
        slot_remove(s, u);
}

int store_upload_commit(Store *s, Upload *u, const char *digest, const char *actor, StoreError *err) {
        DigestAlgorithm a;
        char got[DIGEST_MAX_LEN];
        int r;

        if (!u)
                return -EINVAL;
        if (!digest || digest_parse(digest, &a) < 0) {
                store_upload_release(s, u);
                return store_error_set(err, -EINVAL, OCI_DIGEST_INVALID, "invalid digest %s", strna(digest));
        }
        if (a == DIGEST_SHA256)
                r = hasher_final(u->hasher, got);
        else {
                uint64_t size;
                r = digest_fd(a, u->fd, got, &size);
        }
        if (r < 0) {
                upload_discard(s, u);
                return store_error_set(err, r, OCI_BLOB_UPLOAD_INVALID, "cannot hash the upload");
        }
        if (!streq(got, digest)) {
                upload_discard(s, u);
                return store_error_set(err, -EBADMSG, OCI_DIGEST_INVALID, "content digest is %s, not %s", got, digest);
        }

        _cleanup_free_ char *path = upload_path(s, u->uuid);
        if (!path) {
                store_upload_release(s, u);
                return -ENOMEM;
        }
        pthread_mutex_lock(&s->uploads_lock);
        slot_unlink_locked(s, u);
        pthread_mutex_unlock(&s->uploads_lock);
        /* The record names the digest being committed until the commit's batch deletes it: a crash
         * between the move into the blob backend and that batch leaves a file without index record, which
         * the next open removes (uploads_reconcile). Unsynced like every session write: it is in
         * the WAL before the rename, which is what kill -9 needs; after a power cut such a file is
         * an orphan for GC's reconcile. */
        r = record_write_full(s, u, digest);
        if (r < 0) {
                unlink(path);
                (void) record_delete(s, u->uuid);
                session_uncount(s, u->client);
                slot_free(u);
                return store_error_set(err, r, OCI_BLOB_UPLOAD_INVALID, "index write failed");
        }
        r = blob_commit_file(s, u->repo, path, u->fd, digest, u->offset, u->uuid, actor, err);
        if (r < 0)
                (void) record_delete(s, u->uuid);
        session_uncount(s, u->client);
        slot_free(u);
        return r;
}

int store_upload_cancel(Store *s, const char *repo, const char *uuid) {
        if (s->read_only)
                return -EROFS;
        if (!repo || !uuid || !uuid_is_valid(uuid))
                return -ENOENT;
        Upload *u;
        int r = slot_claim(s, uuid, &u);
        if (r < 0)
                return r;
        if (!u->loaded) {
                UploadRecord rec = {};
                r = record_read(s, uuid, &rec);
                bool match = r >= 0 && streq(rec.repo, repo);
                free(rec.repo);
                if (!match) {
                        free(rec.client);
                        slot_remove(s, u);
                        return -ENOENT;
                }
                u->client = rec.client;
        } else if (!streq(u->repo, repo)) {
                slot_unclaim(s, u);
                return -ENOENT;
        }
        upload_discard(s, u);
        return 0;
}

/* ---- the session records, read as a whole (purge, reconcile, counts at open) */

typedef struct SessionEntry {
        char uuid[37];
        int64_t updated;
        char *client;     /* "" if the record names none */
        char *committing; /* digest of an interrupted commit, or NULL */
} SessionEntry;

typedef struct SessionList {
        SessionEntry *v;
        size_t n, allocated;
} SessionList;

static void session_list_done(SessionList *l) {
        for (size_t i = 0; i < l->n; i++) {
                free(l->v[i].client);
                free(l->v[i].committing);
        }
        free(l->v);
        *l = (SessionList) {};
}

static int session_collect_cb(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        SessionList *l = userdata;
        if (klen != 36)
                return 0;
        if (l->n == l->allocated) {
                size_t na = l->allocated ? l->allocated * 2 : 32;
                SessionEntry *v = realloc(l->v, na * sizeof(SessionEntry));
                if (!v)
                        return -ENOMEM;
                l->v = v;
                l->allocated = na;
        }
        SessionEntry *e = &l->v[l->n];
        json_t *j = json_loadb(val, vlen, 0, NULL);
        const char *c = json_string_value(json_object_get(j, "commit"));
        *e = (SessionEntry) {
                .updated = json_integer_value(json_object_get(j, "updated")),
                .client = strdup(strempty(json_string_value(json_object_get(j, "client")))),
                .committing = c ? strdup(c) : NULL,
        };
        json_decref(j);
        memcpy(e->uuid, key, 36);
        e->uuid[36] = 0;
        l->n++; /* freed with the list whatever happens below */
        return e->client && (!c || e->committing) ? 0 : -ENOMEM;
}

static int sessions_read(Store *s, SessionList *ret) {
        *ret = (SessionList) {};
        int r = store_kv_iterate(s, NULL, INDEX_UPLOAD, NULL, 0, NULL, 0, session_collect_cb, ret);
        if (r < 0)
                session_list_done(ret);
        return r;
}

int store_upload_purge(Store *s, int64_t older_than_ns) {
        if (s->read_only)
                return -EROFS;
        SessionList l;
        int r = sessions_read(s, &l);
        if (r < 0)
                return r;
        int64_t cutoff = clock_now_ns() - older_than_ns;
        int purged = 0;
        for (size_t i = 0; i < l.n; i++) {
                Upload *u;
                if (slot_claim(s, l.v[i].uuid, &u) < 0)
                        continue; /* in use */
                int64_t last = l.v[i].updated;
                if (u->loaded)
                        last = MAX(last, u->updated);
                if (last >= cutoff) {
                        slot_unclaim(s, u);
                        continue;
                }
                if (!u->client) /* a placeholder: the record says who counts it */
                        u->client = steal_pointer(&l.v[i].client);
                log_info("Purging upload session %s (idle since %lld).", u->uuid, (long long) last);
                upload_discard(s, u);
                purged++;
        }
        session_list_done(&l);
        return purged;
}

int uploads_reconcile(Store *s) {
        SessionList l;
        unsigned sessions = 0, files = 0, blobs = 0;
        int r = sessions_read(s, &l);
        for (size_t i = 0; r >= 0 && i < l.n; i++) {
                _cleanup_free_ char *path = upload_path(s, l.v[i].uuid);
                if (!path) {
                        r = -ENOMEM;
                        break;
                }
                const char *digest = l.v[i].committing;
                if (digest) {
                        /* a commit cut short before its index batch: its bytes, if in the blob
                         * backend already, have no record and are visible nowhere */
                        if (store_blob_info(s, digest, NULL) == -ENOENT && blob_backend_remove(s->blobs, digest, NULL) == 1)
                                blobs++;
                        (void) unlink(path);
                } else if (access(path, F_OK) == 0) {
                        /* a session that goes on: it counts against its client's limit */
                        pthread_mutex_lock(&s->uploads_lock);
                        r = client_count_locked(s, l.v[i].client);
                        pthread_mutex_unlock(&s->uploads_lock);
                        continue;
                }
                r = record_delete(s, l.v[i].uuid);
                sessions++;
        }
        session_list_done(&l);
        if (r < 0)
                return log_error_errno(r, "Cannot reconcile upload sessions: %m");

        /* files whose session record never made it (created just before a crash) */
        _cleanup_free_ char *dir = store_path(s, "uploads");
        DIR *d = dir ? opendir(dir) : NULL;
        struct dirent *de;
        while (d && (de = readdir(d))) {
                if (de->d_type != DT_REG || !uuid_is_valid(de->d_name) ||
                    index_get(s, NULL, INDEX_UPLOAD, de->d_name, strlen(de->d_name), NULL, NULL) != -ENOENT)
                        continue;
                if (unlinkat(dirfd(d), de->d_name, 0) == 0)
                        files++;
        }
        if (d)
                closedir(d);
        if (sessions + files + blobs > 0)
                log_info("Reconciled uploads after an unclean stop: %u session record(s) without file or with an "
                         "interrupted commit, %u upload file(s) without record, %u uncommitted blob file(s) removed.",
                         sessions, files, blobs);
        return 0;
}

void uploads_free_all(Store *s) {
        pthread_mutex_lock(&s->uploads_lock);
        Upload *u = s->uploads;
        s->uploads = NULL;
        for (size_t i = 0; i < UPLOAD_CLIENT_BUCKETS; i++)
                while (s->upload_clients[i]) {
                        UploadClient *c = s->upload_clients[i];
                        s->upload_clients[i] = c->next;
                        free(c);
                }
        s->upload_sessions = 0;
        pthread_mutex_unlock(&s->uploads_lock);
        while (u) {
                Upload *next = u->next;
                slot_free(u);
                u = next;
        }
}
