/* SPDX-License-Identifier: MIT */
/* The FUSE filesystem (libfuse3 low-level API, multithreaded loop): the nodes of the view
 * (nodes.c: what a path is, its attributes, listing and bytes) served to the kernel, with
 * stateless inode numbers (inode.c) and the table of the inodes the kernel knows. Every
 * operation re-resolves the inode's path against the store, which is what makes a new push or a
 * deleted tag visible without remounting. */

#define FUSE_USE_VERSION 35

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/config-schema.h"
#include "common/log.h"
#include "common/util.h"
#include "fusefs-internal.h"
#include "fusefs.h"

_Static_assert(INO_ROOT == FUSE_ROOT_ID, "the root inode");

struct Fusefs {
        Store *store;
        FusefsOptions o;
        struct fuse_session *se;
        char *mountpoint;
        bool mounted;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool stopping;
        bool catch_up_started;
        pthread_t catch_up_thread;
        bool loop_started;
        pthread_t loop_thread;
        FsView view;
        InoTable *inos;
};

/* ------------------------------------------------------------------ FUSE operations */

static Fusefs *F(fuse_req_t req) {
        return fuse_req_userdata(req);
}

static void make_entry(const char *path, Node *n, struct fuse_entry_param *e) {
        *e = (struct fuse_entry_param) {};
        e->ino = node_ino(path, n);
        e->attr = n->st;
        e->attr.st_ino = e->ino;
        e->attr_timeout = node_attr_timeout(n);
        e->entry_timeout = node_entry_timeout(n); /* blobs: the bytes never change, but GC may remove the name */
}

static void op_init(void *userdata, struct fuse_conn_info *conn) {
        if (conn->capable & FUSE_CAP_SPLICE_WRITE)
                conn->want |= FUSE_CAP_SPLICE_WRITE;
        if (conn->capable & FUSE_CAP_SPLICE_MOVE)
                conn->want |= FUSE_CAP_SPLICE_MOVE;
        if (conn->capable & FUSE_CAP_READDIRPLUS)
                conn->want |= FUSE_CAP_READDIRPLUS;
        conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
        if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
                conn->want |= FUSE_CAP_CACHE_SYMLINKS;
        conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
        conn->max_readahead = 1U << 20;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
        Fusefs *f = F(req);
        _cleanup_free_ char *pp = ino_path(f->inos, parent);
        if (!pp) {
                fuse_reply_err(req, ESTALE);
                return;
        }
        _cleanup_free_ char *cp = child_path(pp, name);
        Node n;
        int r = cp ? node_resolve(&f->view, cp, &n) : -ENOMEM;
        if (r < 0) {
                if (r == -ENOENT) {
                        /* negative entries of mutable listings expire quickly */
                        struct fuse_entry_param e = { .entry_timeout = TIMEOUT_MUTABLE };
                        fuse_reply_entry(req, &e);
                } else
                        fuse_reply_err(req, -r);
                return;
        }
        struct fuse_entry_param e;
        make_entry(cp, &n, &e);
        if (ino_remember(f->inos, e.ino, cp) < 0) {
                node_done(&f->view, &n);
                fuse_reply_err(req, ENOMEM);
                return;
        }
        node_done(&f->view, &n);
        fuse_reply_entry(req, &e);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
        ino_forget(F(req)->inos, ino, nlookup);
        fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets) {
        for (size_t i = 0; i < count; i++)
                ino_forget(F(req)->inos, forgets[i].ino, forgets[i].nlookup);
        fuse_reply_none(req);
}

/* Resolves ino; replies with an error and returns false on failure. */
static bool resolve_ino(fuse_req_t req, fuse_ino_t ino, char **ret_path, Node *n) {
        Fusefs *f = F(req);
        char *p = ino_path(f->inos, ino);
        if (!p) {
                fuse_reply_err(req, ESTALE);
                return false;
        }
        int r = node_resolve(&f->view, p, n);
        if (r < 0) {
                free(p);
                fuse_reply_err(req, -r);
                return false;
        }
        *ret_path = p;
        return true;
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
        _cleanup_free_ char *p = NULL;
        Node n;
        if (!resolve_ino(req, ino, &p, &n))
                return;
        struct stat st = n.st;
        st.st_ino = ino;
        double t = node_attr_timeout(&n);
        node_done(&F(req)->view, &n);
        fuse_reply_attr(req, &st, t);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino) {
        _cleanup_free_ char *p = NULL;
        Node n;
        if (!resolve_ino(req, ino, &p, &n))
                return;
        Fusefs *f = F(req); /* a reply frees req */
        _cleanup_free_ char *link = steal_pointer(&n.link);
        node_done(&f->view, &n);
        if (!link)
                fuse_reply_err(req, EINVAL);
        else
                fuse_reply_readlink(req, link);
}

typedef struct DirHandle {
        char *path;
        DirList list;
} DirHandle;

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
        Fusefs *f = F(req);
        _cleanup_free_ char *p = NULL;
        Node n;
        if (!resolve_ino(req, ino, &p, &n))
                return;
        if (!S_ISDIR(n.st.st_mode)) {
                node_done(&f->view, &n);
                fuse_reply_err(req, ENOTDIR);
                return;
        }
        DirHandle *h = calloc(1, sizeof(DirHandle));
        if (!h) {
                node_done(&f->view, &n);
                fuse_reply_err(req, ENOMEM);
                return;
        }
        int r = node_list(&f->view, p, &n, &h->list);
        bool immutable = n.immutable;
        node_done(&f->view, &n);
        if (r < 0) {
                dirlist_done(&f->view, &h->list);
                free(h);
                fuse_reply_err(req, r == -ENOENT ? EIO : -r);
                return;
        }
        h->path = steal_pointer(&p);
        fi->fh = (uintptr_t) h;
        fi->cache_readdir = immutable;
        fi->keep_cache = immutable;
        fuse_reply_open(req, fi);
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi, bool plus) {
        Fusefs *f = F(req);
        DirHandle *h = (DirHandle *) (uintptr_t) fi->fh;
        _cleanup_free_ char *buf = malloc(size);
        size_t used = 0;
        if (!buf) {
                fuse_reply_err(req, ENOMEM);
                return;
        }
        /* offsets: 1 = ".", 2 = "..", 3 + i = entry i */
        for (off_t i = off; (size_t) i < h->list.n + 2; i++) {
                const char *name;
                struct stat st = {};
                struct fuse_entry_param e = {};
                _cleanup_free_ char *cp = NULL;
                if (i == 0) {
                        name = ".";
                        st.st_mode = S_IFDIR;
                        st.st_ino = ino;
                        e.attr = st;
                } else if (i == 1) {
                        name = "..";
                        st.st_mode = S_IFDIR;
                        e.attr = st;
                } else {
                        DirEnt *d = h->list.e + (i - 2);
                        name = d->name;
                        cp = child_path(h->path, name);
                        if (!cp)
                                break;
                        make_entry(cp, &d->node, &e);
                        st = e.attr;
                }
                size_t need = plus ? fuse_add_direntry_plus(req, NULL, 0, name, NULL, 0)
                                   : fuse_add_direntry(req, NULL, 0, name, NULL, 0);
                if (used + need > size)
                        break;
                if (plus) {
                        if (i >= 2 && ino_remember(f->inos, e.ino, cp) < 0)
                                break;
                        if (i < 2)
                                e = (struct fuse_entry_param) {}; /* "." and "..": no lookup count */
                        fuse_add_direntry_plus(req, buf + used, size - used, name, &e, i + 1);
                } else
                        fuse_add_direntry(req, buf + used, size - used, name, &st, i + 1);
                used += need;
        }
        fuse_reply_buf(req, buf, used);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
        do_readdir(req, ino, size, off, fi, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
        do_readdir(req, ino, size, off, fi, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
        DirHandle *h = (DirHandle *) (uintptr_t) fi->fh;
        if (h) {
                dirlist_done(&F(req)->view, &h->list);
                free(h->path);
                free(h);
        }
        fuse_reply_err(req, 0);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
        Fusefs *f = F(req);
        if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
                fuse_reply_err(req, EROFS);
                return;
        }
        _cleanup_free_ char *p = NULL;
        Node n;
        if (!resolve_ino(req, ino, &p, &n))
                return;
        FileHandle *h = NULL;
        int r = node_open(&f->view, p, &n, &h);
        bool immutable = n.immutable;
        node_done(&f->view, &n);
        if (r < 0) {
                fuse_reply_err(req, -r);
                return;
        }
        fi->fh = (uintptr_t) h;
        fi->keep_cache = immutable;
        if (!immutable && h->content)
                fi->direct_io = 1; /* synthesized text may change size under the page cache */
        if (fuse_reply_open(req, fi) == -ENOENT)
                file_handle_free(&f->view, h); /* interrupted */
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
        FileHandle *h = (FileHandle *) (uintptr_t) fi->fh;
        if (off < 0 || (uint64_t) off >= h->size) {
                fuse_reply_buf(req, NULL, 0);
                return;
        }
        size = (size_t) MIN((uint64_t) size, h->size - (uint64_t) off);
        if (h->content) {
                /* Reply from a copy: once the kernel has the reply, the reader may close the file
                 * and a RELEASE on another thread frees h before fuse_reply_buf() returns (ASan's
                 * writev interceptor checks the buffer after the syscall and reports that). */
                _cleanup_free_ char *copy = malloc(MAX(size, 1));
                if (!copy) {
                        fuse_reply_err(req, ENOMEM);
                        return;
                }
                memcpy(copy, h->content + off, size);
                fuse_reply_buf(req, copy, size);
                return;
        }
        if (h->fd >= 0) {
                struct fuse_bufvec bv = FUSE_BUFVEC_INIT(size);
                bv.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
                bv.buf[0].fd = h->fd;
                bv.buf[0].pos = (off_t) (h->base + (uint64_t) off);
                fuse_reply_data(req, &bv, FUSE_BUF_SPLICE_MOVE);
                return;
        }
        _cleanup_free_ char *buf = malloc(MAX(size, 1));
        if (!buf) {
                fuse_reply_err(req, ENOMEM);
                return;
        }
        ssize_t k = file_handle_pread(h, buf, size, (uint64_t) off);
        if (k < 0) {
                log_warning_errno((int) k, "fusefs: read of inode %" PRIu64 " failed: %m", (uint64_t) ino);
                fuse_reply_err(req, EIO);
                return;
        }
        fuse_reply_buf(req, buf, (size_t) k);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
        file_handle_free(&F(req)->view, (FileHandle *) (uintptr_t) fi->fh);
        fuse_reply_err(req, 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino) {
        struct statvfs st = { .f_bsize = 4096, .f_frsize = 4096, .f_namemax = 255, .f_flag = ST_RDONLY };
        fuse_reply_statfs(req, &st);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size) {
        fuse_reply_err(req, ENODATA);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
        if (size == 0)
                fuse_reply_xattr(req, 0);
        else
                fuse_reply_buf(req, NULL, 0);
}

/* Everything that would change something. */
static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi) {
        fuse_reply_err(req, EROFS);
}
static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev) {
        fuse_reply_err(req, EROFS);
}
static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode) {
        fuse_reply_err(req, EROFS);
}
static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name) {
        fuse_reply_err(req, EROFS);
}
static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name) {
        fuse_reply_err(req, EROFS);
}
static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent, const char *newname,
                      unsigned int flags) {
        fuse_reply_err(req, EROFS);
}
static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname) {
        fuse_reply_err(req, EROFS);
}
static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
        fuse_reply_err(req, EROFS);
}
static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi) {
        fuse_reply_err(req, EROFS);
}
static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size, int flags) {
        fuse_reply_err(req, EROFS);
}
static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name) {
        fuse_reply_err(req, EROFS);
}

static const struct fuse_lowlevel_ops ops = {
        .init = op_init,
        .lookup = op_lookup,
        .forget = op_forget,
        .forget_multi = op_forget_multi,
        .getattr = op_getattr,
        .readlink = op_readlink,
        .opendir = op_opendir,
        .readdir = op_readdir,
        .readdirplus = op_readdirplus,
        .releasedir = op_releasedir,
        .open = op_open,
        .read = op_read,
        .release = op_release,
        .statfs = op_statfs,
        .getxattr = op_getxattr,
        .listxattr = op_listxattr,
        .setattr = op_setattr,
        .mknod = op_mknod,
        .mkdir = op_mkdir,
        .unlink = op_unlink,
        .rmdir = op_unlink,
        .symlink = op_symlink,
        .rename = op_rename,
        .link = op_link,
        .write = op_write,
        .create = op_create,
        .setxattr = op_setxattr,
        .removexattr = op_removexattr,
};

/* ------------------------------------------------------------------ lifecycle */

void fusefs_options_init(FusefsOptions *o) {
        *o = (FusefsOptions) { .catch_up_interval_ns = (int64_t) NSEC_PER_SEC };
}

static int json_u64(json_t *fuse, const char *key, uint64_t *ret, char *err, size_t errlen) {
        json_t *v = json_object_get(fuse, key);
        if (!v)
                return 0;
        if (!json_is_integer(v) || json_integer_value(v) < 0) {
                snprintf(err, errlen, "fuse.%s: expected a non-negative integer", key);
                return -EINVAL;
        }
        *ret = (uint64_t) json_integer_value(v);
        return 0;
}

int fusefs_options_from_json(json_t *fuse, FusefsOptions *o, char *err, size_t errlen) {
        if (!json_is_object(fuse))
                return 0;
        json_t *v = json_object_get(fuse, "catch_up_interval");
        if (v) {
                int64_t ns;
                if (config_duration_ns(v, &ns) < 0 || ns <= 0) {
                        snprintf(err, errlen, "fuse.catch_up_interval: expected a duration like \"1s\"");
                        return -EINVAL;
                }
                o->catch_up_interval_ns = ns;
        }
        v = json_object_get(fuse, "allow_other");
        if (v) {
                if (!json_is_boolean(v)) {
                        snprintf(err, errlen, "fuse.allow_other: expected a boolean");
                        return -EINVAL;
                }
                o->allow_other = json_is_true(v);
        }
        uint64_t threads = o->threads;
        int r = json_u64(fuse, "threads", &threads, err, errlen);
        if (r >= 0)
                r = json_u64(fuse, "gzip_span", &o->gzip_span, err, errlen);
        if (r >= 0)
                r = json_u64(fuse, "max_layer_bytes", &o->max_layer_bytes, err, errlen);
        if (r >= 0)
                r = json_u64(fuse, "zstd_cache_bytes", &o->zstd_cache_bytes, err, errlen);
        o->threads = (unsigned) MIN(threads, 1024U);
        return r;
}

static void *catch_up_main(void *userdata) {
        Fusefs *f = userdata;
        sigset_t ss;
        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        sigaddset(&ss, SIGHUP);
        pthread_sigmask(SIG_BLOCK, &ss, NULL);
        pthread_mutex_lock(&f->lock);
        while (!f->stopping) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                int64_t ns = ts.tv_nsec + f->o.catch_up_interval_ns;
                ts.tv_sec += ns / 1000000000;
                ts.tv_nsec = ns % 1000000000;
                pthread_cond_timedwait(&f->cond, &f->lock, &ts);
                if (f->stopping)
                        break;
                pthread_mutex_unlock(&f->lock);
                int r = store_catch_up(f->store);
                if (r < 0)
                        log_warning_errno(r, "fusefs: catching up with the primary failed: %m");
                repo_set_invalidate(f->view.repos);
                pthread_mutex_lock(&f->lock);
        }
        pthread_mutex_unlock(&f->lock);
        return NULL;
}

int fusefs_mount(Store *s, const char *mountpoint, const FusefsOptions *o, Fusefs **ret) {
        int r;
        Fusefs *f = calloc(1, sizeof(Fusefs));
        if (!f)
                return -ENOMEM;
        f->store = s;
        if (o)
                f->o = *o;
        else
                fusefs_options_init(&f->o);
        if (f->o.catch_up_interval_ns <= 0)
                f->o.catch_up_interval_ns = (int64_t) NSEC_PER_SEC;
        pthread_mutex_init(&f->lock, NULL);
        pthread_cond_init(&f->cond, NULL);
        f->mountpoint = strdup(mountpoint);
        LayerCacheOptions lo = {
                .span = f->o.gzip_span, .max_layer_bytes = f->o.max_layer_bytes, .zstd_cache_bytes = f->o.zstd_cache_bytes,
        };
        if (!f->mountpoint || ino_table_new(&f->inos) < 0 || fs_view_init(&f->view, s, &lo) < 0) {
                fusefs_free(f);
                return -ENOMEM;
        }

        char opts[256];
        snprintf(opts, sizeof(opts), "ro,fsname=plura,subtype=plura%s", f->o.allow_other ? ",allow_other" : "");
        char *argv[] = { (char *) "plura", (char *) "-o", opts, f->o.debug ? (char *) "-d" : NULL, NULL };
        struct fuse_args args = FUSE_ARGS_INIT(f->o.debug ? 4 : 3, argv);
        f->se = fuse_session_new(&args, &ops, sizeof(ops), f);
        fuse_opt_free_args(&args);
        if (!f->se) {
                fusefs_free(f);
                return log_error_errno(EINVAL, "fusefs: cannot create the FUSE session");
        }
        if (fuse_session_mount(f->se, mountpoint) != 0) {
                fusefs_free(f);
                return log_error_errno(EIO, "fusefs: cannot mount on %s", mountpoint);
        }
        f->mounted = true;
        if (store_is_read_only(s)) {
                r = pthread_create(&f->catch_up_thread, NULL, catch_up_main, f);
                if (r != 0) {
                        fusefs_free(f);
                        return -r;
                }
                f->catch_up_started = true;
        }
        log_info("fusefs: mounted on %s%s", mountpoint, store_is_read_only(s) ? " (secondary, catching up)" : "");
        *ret = f;
        return 0;
}

int fusefs_run(Fusefs *f) {
        struct fuse_loop_config cfg = { .clone_fd = 0, .max_idle_threads = f->o.threads ? f->o.threads : 10 };
        int r = fuse_session_loop_mt(f->se, &cfg);
        return r < 0 ? r : 0;
}

int fusefs_install_signal_handlers(Fusefs *f) {
        return fuse_set_signal_handlers(f->se) != 0 ? -EIO : 0;
}

void fusefs_remove_signal_handlers(Fusefs *f) {
        fuse_remove_signal_handlers(f->se);
}

static void unmount_once(Fusefs *f) {
        pthread_mutex_lock(&f->lock);
        bool was = f->mounted;
        f->mounted = false;
        pthread_mutex_unlock(&f->lock);
        if (was && f->se)
                fuse_session_unmount(f->se);
}

void fusefs_stop(Fusefs *f) {
        if (!f)
                return;
        pthread_mutex_lock(&f->lock);
        f->stopping = true;
        pthread_cond_broadcast(&f->cond);
        pthread_mutex_unlock(&f->lock);
        if (f->se)
                fuse_session_exit(f->se);
        /* unmounting aborts the connection: the workers' reads fail and the loop returns */
        unmount_once(f);
}

Fusefs *fusefs_free(Fusefs *f) {
        if (!f)
                return NULL;
        pthread_mutex_lock(&f->lock);
        f->stopping = true;
        pthread_cond_broadcast(&f->cond);
        pthread_mutex_unlock(&f->lock);
        if (f->catch_up_started)
                pthread_join(f->catch_up_thread, NULL);
        unmount_once(f);
        if (f->se)
                fuse_session_destroy(f->se);
        fs_view_done(&f->view);
        ino_table_free(f->inos);
        free(f->mountpoint);
        pthread_mutex_destroy(&f->lock);
        pthread_cond_destroy(&f->cond);
        free(f);
        return NULL;
}

static void *loop_main(void *userdata) {
        Fusefs *f = userdata;
        sigset_t ss;
        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        sigaddset(&ss, SIGHUP);
        sigaddset(&ss, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &ss, NULL);
        int r = fusefs_run(f);
        if (r < 0)
                log_warning_errno(r, "fusefs: session loop ended: %m");
        return NULL;
}

int fusefs_start_in_process(Store *s, const char *mountpoint, const FusefsOptions *o, Fusefs **ret) {
        Fusefs *f = NULL;
        int r = fusefs_mount(s, mountpoint, o, &f);
        if (r < 0)
                return r;
        r = pthread_create(&f->loop_thread, NULL, loop_main, f);
        if (r != 0) {
                fusefs_free(f);
                return -r;
        }
        f->loop_started = true;
        *ret = f;
        return 0;
}

void fusefs_stop_in_process(Fusefs *f) {
        if (!f)
                return;
        fusefs_stop(f);
        if (f->loop_started)
                pthread_join(f->loop_thread, NULL);
        fusefs_free(f);
}
