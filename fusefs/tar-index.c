/* SPDX-License-Identifier: MIT */
/* Streaming ustar/pax/GNU tar header parser producing an entry table. It never trusts the
 * input: every number is range-checked, every record bounded, and a name that would leave the
 * root is refused. The parser consumes the stream in arbitrary slices so that the gzip
 * indexer can feed it while it inflates, in one pass. */

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "layer-index.h"

#define BLOCK 512U

typedef enum ParserState {
        STATE_HEADER,    /* collecting a 512-byte header */
        STATE_EXT,       /* collecting a PAX / GNU long name body */
        STATE_SKIP,      /* skipping data and padding */
        STATE_END,       /* after the end-of-archive marker */
        STATE_FAILED,
} ParserState;

typedef enum ExtKind {
        EXT_PAX,
        EXT_PAX_GLOBAL,
        EXT_LONGNAME,
        EXT_LONGLINK,
} ExtKind;

/* Pending overrides from PAX / GNU records, applied to the next real header. */
typedef struct Overrides {
        char *path;
        char *linkpath;
        bool has_size, has_mtime, has_uid, has_gid, sparse;
        uint64_t size;
        int64_t mtime_ns;
        uint64_t uid, gid;
} Overrides;

struct TarParser {
        ParserState state;
        int error;
        char errmsg[256];

        uint64_t pos;          /* stream offset of the next byte fed */
        uint8_t header[BLOCK];
        size_t header_fill;

        ExtKind ext_kind;
        char *ext;             /* body being collected */
        size_t ext_fill, ext_need;
        uint64_t ext_pad;

        uint64_t skip;         /* bytes left to skip */

        Overrides local, global;
        TarIndex *index;
};

static void overrides_clear(Overrides *o) {
        free(o->path);
        free(o->linkpath);
        *o = (Overrides) {};
}

static int fail(TarParser *p, int r, const char *fmt, ...) _printf_(3, 4);
static int fail(TarParser *p, int r, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->errmsg, sizeof(p->errmsg), fmt, ap);
        va_end(ap);
        p->state = STATE_FAILED;
        p->error = r;
        return r;
}

int tar_parser_new(TarParser **ret) {
        TarParser *p = calloc(1, sizeof(TarParser));
        if (!p)
                return -ENOMEM;
        p->index = calloc(1, sizeof(TarIndex));
        if (!p->index) {
                free(p);
                return -ENOMEM;
        }
        *ret = p;
        return 0;
}

TarIndex *tar_index_free(TarIndex *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_entries; i++) {
                free(t->entries[i].path);
                free(t->entries[i].link);
        }
        free(t->entries);
        free(t);
        return NULL;
}

TarParser *tar_parser_free(TarParser *p) {
        if (!p)
                return NULL;
        free(p->ext);
        overrides_clear(&p->local);
        overrides_clear(&p->global);
        tar_index_free(p->index);
        free(p);
        return NULL;
}

const char *tar_parser_error(TarParser *p) {
        return p->errmsg[0] ? p->errmsg : "no error";
}

int tar_path_normalize(const char *in, char **ret) {
        size_t l = strlen(in);
        if (l > TAR_PATH_MAX)
                return -EBADMSG;
        char *out = malloc(l + 1);
        if (!out)
                return -ENOMEM;
        size_t o = 0;
        const char *s = in;
        while (*s) {
                while (*s == '/')
                        s++;
                if (!*s)
                        break;
                const char *e = strchrnul(s, '/');
                size_t cl = (size_t) (e - s);
                if (cl == 1 && s[0] == '.') {
                        /* skip */
                } else if (cl == 2 && s[0] == '.' && s[1] == '.') {
                        if (o == 0) {
                                free(out);
                                return -EBADMSG; /* would escape the root */
                        }
                        while (o > 0 && out[o - 1] != '/')
                                o--;
                        if (o > 0)
                                o--; /* the separator */
                } else {
                        if (o > 0)
                                out[o++] = '/';
                        memcpy(out + o, s, cl);
                        o += cl;
                }
                s = e;
        }
        out[o] = 0;
        *ret = out;
        return 0;
}

/* Numeric fields: octal (space/NUL padded) or GNU base-256 when the top bit is set. */
static int parse_number(const uint8_t *f, size_t n, bool allow_negative, int64_t *ret) {
        if (n == 0)
                return -EBADMSG;
        if (f[0] & 0x80) {
                bool neg = f[0] == 0xff;
                if (!neg && f[0] != 0x80)
                        return -EBADMSG;
                if (neg && !allow_negative)
                        return -EBADMSG;
                uint64_t v = 0;
                for (size_t i = 1; i < n; i++) {
                        if (v >> 55) {
                                /* leading bytes must be sign extension, value must fit */
                                if (!neg || (v >> 56) != 0xff)
                                        return -ERANGE;
                        }
                        v = (v << 8) | f[i];
                }
                if (neg) {
                        int64_t sv = (int64_t) v;
                        *ret = sv;
                        return 0;
                }
                if (v > INT64_MAX)
                        return -ERANGE;
                *ret = (int64_t) v;
                return 0;
        }
        size_t i = 0;
        while (i < n && (f[i] == ' ' || f[i] == 0))
                i++;
        if (i == n) {
                *ret = 0;
                return 0;
        }
        uint64_t v = 0;
        bool any = false;
        for (; i < n; i++) {
                if (f[i] >= '0' && f[i] <= '7') {
                        if (v >> 60)
                                return -ERANGE;
                        v = v * 8 + (uint64_t) (f[i] - '0');
                        any = true;
                } else if (f[i] == ' ' || f[i] == 0) {
                        /* the rest must be terminators */
                        for (; i < n; i++)
                                if (f[i] != ' ' && f[i] != 0)
                                        return -EBADMSG;
                        break;
                } else
                        return -EBADMSG;
        }
        if (!any)
                return -EBADMSG;
        *ret = (int64_t) v;
        return 0;
}

static char *field_string(const uint8_t *f, size_t n) {
        size_t l = strnlen((const char *) f, n);
        return strndup((const char *) f, l);
}

static bool block_is_zero(const uint8_t *b) {
        for (size_t i = 0; i < BLOCK; i++)
                if (b[i])
                        return false;
        return true;
}

static bool checksum_ok(const uint8_t *h) {
        int64_t stored;
        if (parse_number(h + 148, 8, false, &stored) < 0)
                return false;
        uint64_t u = 0;
        int64_t sgn = 0;
        for (size_t i = 0; i < BLOCK; i++) {
                uint8_t c = (i >= 148 && i < 156) ? ' ' : h[i];
                u += c;
                sgn += (int8_t) c;
        }
        return (int64_t) u == stored || sgn == stored;
}

static int index_add(TarParser *p, TarEntry *e) {
        TarIndex *t = p->index;
        if (t->n_entries >= TAR_ENTRIES_MAX)
                return fail(p, -E2BIG, "more than %u entries", TAR_ENTRIES_MAX);
        size_t sb = strlen(e->path) + 1 + (e->link ? strlen(e->link) + 1 : 0);
        if (t->string_bytes + sb > TAR_STRING_BYTES_MAX)
                return fail(p, -E2BIG, "names use more than %u bytes", TAR_STRING_BYTES_MAX);
        if (t->n_entries == t->n_allocated) {
                size_t na = t->n_allocated ? t->n_allocated * 2 : 64;
                TarEntry *ne = realloc(t->entries, na * sizeof(TarEntry));
                if (!ne)
                        return fail(p, -ENOMEM, "out of memory");
                t->entries = ne;
                t->n_allocated = na;
        }
        t->entries[t->n_entries++] = *e;
        t->string_bytes += sb;
        *e = (TarEntry) {};
        return 0;
}

/* Parses PAX records "<len> <key>=<value>\n" into o. */
static int parse_pax(TarParser *p, const char *d, size_t n, Overrides *o, bool global) {
        size_t i = 0;
        while (i < n) {
                if (d[i] == 0) /* some writers pad with NULs */
                        break;
                size_t len = 0, j = i;
                while (j < n && d[j] >= '0' && d[j] <= '9') {
                        len = len * 10 + (size_t) (d[j] - '0');
                        if (len > n)
                                return fail(p, -EBADMSG, "pax record length out of range");
                        j++;
                }
                if (j == i || j >= n || d[j] != ' ' || len < (j - i) + 3 || i + len > n || d[i + len - 1] != '\n')
                        return fail(p, -EBADMSG, "malformed pax record at %zu", i);
                const char *key = d + j + 1;
                const char *end = d + i + len - 1; /* the '\n' */
                const char *eq = memchr(key, '=', (size_t) (end - key));
                if (!eq)
                        return fail(p, -EBADMSG, "pax record without '='");
                size_t kl = (size_t) (eq - key), vl = (size_t) (end - eq - 1);
                const char *val = eq + 1;
                if (memchr(val, 0, vl))
                        return fail(p, -EBADMSG, "pax value with a NUL byte");
#define KEY(s) (kl == strlen(s) && memcmp(key, s, kl) == 0)
                if (KEY("path") || KEY("linkpath")) {
                        if (vl > TAR_PATH_MAX)
                                return fail(p, -EBADMSG, "pax path longer than %u", TAR_PATH_MAX);
                        if (!global) {
                                char **t = KEY("path") ? &o->path : &o->linkpath;
                                free(*t);
                                *t = strndup(val, vl);
                                if (!*t)
                                        return fail(p, -ENOMEM, "out of memory");
                        }
                } else if (KEY("size") || KEY("uid") || KEY("gid")) {
                        uint64_t v = 0;
                        if (vl == 0 || vl > 20)
                                return fail(p, -EBADMSG, "pax number out of range");
                        for (size_t k = 0; k < vl; k++) {
                                if (val[k] < '0' || val[k] > '9')
                                        return fail(p, -EBADMSG, "pax number malformed");
                                if (v > (UINT64_MAX - 9) / 10)
                                        return fail(p, -EBADMSG, "pax number out of range");
                                v = v * 10 + (uint64_t) (val[k] - '0');
                        }
                        if (KEY("size")) {
                                if (!global) {
                                        o->has_size = true;
                                        o->size = v;
                                }
                        } else if (KEY("uid")) {
                                o->has_uid = true;
                                o->uid = v;
                        } else {
                                o->has_gid = true;
                                o->gid = v;
                        }
                } else if (KEY("mtime")) {
                        /* [-]seconds[.fraction] */
                        size_t k = 0;
                        bool neg = false;
                        int64_t sec = 0, ns = 0;
                        if (k < vl && val[k] == '-') {
                                neg = true;
                                k++;
                        }
                        size_t digits = 0;
                        for (; k < vl && val[k] >= '0' && val[k] <= '9'; k++) {
                                if (++digits > 10)
                                        return fail(p, -EBADMSG, "pax mtime out of range");
                                sec = sec * 10 + (val[k] - '0');
                        }
                        if (digits == 0)
                                return fail(p, -EBADMSG, "pax mtime malformed");
                        if (k < vl && val[k] == '.') {
                                k++;
                                int64_t scale = 100000000;
                                for (; k < vl && val[k] >= '0' && val[k] <= '9'; k++) {
                                        ns += (val[k] - '0') * scale;
                                        scale /= 10;
                                }
                        }
                        if (k != vl)
                                return fail(p, -EBADMSG, "pax mtime malformed");
                        if (sec > 9000000000)
                                return fail(p, -EBADMSG, "pax mtime out of range");
                        o->has_mtime = true;
                        o->mtime_ns = (neg ? -1 : 1) * (sec * 1000000000 + ns);
                } else if (kl > 11 && memcmp(key, "GNU.sparse.", 11) == 0) {
                        if (!global)
                                o->sparse = true;
                }
#undef KEY
                i += len;
        }
        return 0;
}

static uint64_t padded(uint64_t n) {
        return (n + BLOCK - 1) / BLOCK * BLOCK;
}

static int process_header(TarParser *p) {
        const uint8_t *h = p->header;
        uint64_t data_offset = p->pos; /* p->pos already points past the header */
        int r;

        if (block_is_zero(h)) {
                /* end-of-archive marker (one zero block is enough for us) */
                if (p->local.path || p->local.linkpath || p->local.has_size)
                        return fail(p, -EBADMSG, "archive ends after an extended header");
                p->state = STATE_END;
                return 0;
        }
        if (!checksum_ok(h))
                return fail(p, -EBADMSG, "bad header checksum at offset %" PRIu64, data_offset - BLOCK);

        int64_t mode, uid, gid, size, mtime;
        if (parse_number(h + 100, 8, false, &mode) < 0 || parse_number(h + 108, 8, false, &uid) < 0 ||
            parse_number(h + 116, 8, false, &gid) < 0 || parse_number(h + 124, 12, false, &size) < 0 ||
            parse_number(h + 136, 12, true, &mtime) < 0)
                return fail(p, -EBADMSG, "malformed numeric field in header at %" PRIu64, data_offset - BLOCK);
        char type = (char) h[156];

        if (type == 'x' || type == 'g' || type == 'L' || type == 'K') {
                if (size < 0 || (uint64_t) size > TAR_EXT_HEADER_MAX)
                        return fail(p, -EBADMSG, "extended header of %" PRIi64 " bytes", size);
                p->ext_kind = type == 'x' ? EXT_PAX : type == 'g' ? EXT_PAX_GLOBAL : type == 'L' ? EXT_LONGNAME : EXT_LONGLINK;
                free(p->ext);
                p->ext = malloc((size_t) size + 1);
                if (!p->ext)
                        return fail(p, -ENOMEM, "out of memory");
                p->ext_fill = 0;
                p->ext_need = (size_t) size;
                p->ext_pad = padded((uint64_t) size) - (uint64_t) size;
                p->state = STATE_EXT;
                if (size == 0) {
                        p->ext[0] = 0;
                        p->state = STATE_EXT; /* completes on the next feed or at finish */
                }
                return 0;
        }

        bool ustar = memcmp(h + 257, "ustar\0", 6) == 0; /* POSIX; GNU is "ustar  \0" */
        _cleanup_free_ char *name = NULL, *link = NULL;
        if (p->local.path)
                name = steal_pointer(&p->local.path);
        else {
                _cleanup_free_ char *base = field_string(h, 100);
                if (!base)
                        return fail(p, -ENOMEM, "out of memory");
                if (ustar && h[345]) {
                        _cleanup_free_ char *prefix = field_string(h + 345, 155);
                        if (!prefix)
                                return fail(p, -ENOMEM, "out of memory");
                        name = strdup_printf("%s/%s", prefix, base);
                } else
                        name = steal_pointer(&base);
                if (!name)
                        return fail(p, -ENOMEM, "out of memory");
        }
        if (p->local.linkpath)
                link = steal_pointer(&p->local.linkpath);
        else if ((link = field_string(h + 157, 100)) == NULL)
                return fail(p, -ENOMEM, "out of memory");

        uint64_t usize = (uint64_t) size;
        if (p->local.has_size)
                usize = p->local.size;
        if (p->global.has_uid)
                uid = (int64_t) p->global.uid;
        if (p->global.has_gid)
                gid = (int64_t) p->global.gid;
        const int64_t mtime_max = INT64_MAX / 1000000000 - 1;
        int64_t mtime_ns = MAX(MIN(mtime, mtime_max), -mtime_max) * 1000000000;
        if (p->global.has_mtime)
                mtime_ns = p->global.mtime_ns;
        if (p->local.has_uid)
                uid = (int64_t) p->local.uid;
        if (p->local.has_gid)
                gid = (int64_t) p->local.gid;
        if (p->local.has_mtime)
                mtime_ns = p->local.mtime_ns;
        bool sparse = p->local.sparse || type == 'S';
        overrides_clear(&p->local);

        if (usize > TAR_ENTRY_SIZE_MAX)
                return fail(p, -EBADMSG, "entry '%.200s' claims %" PRIu64 " bytes", name, usize);
        if (strlen(name) > TAR_PATH_MAX || strlen(link) > TAR_PATH_MAX)
                return fail(p, -EBADMSG, "name longer than %u", TAR_PATH_MAX);

        TarEntry e = {
                .mode = (uint32_t) (mode & 07777),
                .uid = (uint32_t) MIN((uint64_t) uid, UINT32_MAX),
                .gid = (uint32_t) MIN((uint64_t) gid, UINT32_MAX),
                .mtime_ns = mtime_ns,
                .offset = data_offset,
        };
        bool keep = true;
        switch (type) {
        case '0': case '\0': case '7':
                e.type = TAR_ENTRY_FILE;
                e.size = usize;
                /* old tars mark directories with a trailing slash on a regular entry */
                if (type == '\0' && name[0] && name[strlen(name) - 1] == '/') {
                        e.type = TAR_ENTRY_DIR;
                        e.size = 0;
                }
                break;
        case '1':
                e.type = TAR_ENTRY_HARDLINK;
                break;
        case '2':
                e.type = TAR_ENTRY_SYMLINK;
                break;
        case '5':
                e.type = TAR_ENTRY_DIR;
                break;
        default:
                keep = false; /* devices, fifos, sparse files, vendor types */
        }
        if (sparse)
                keep = false;

        if (keep) {
                r = tar_path_normalize(name, &e.path);
                if (r == -ENOMEM)
                        return fail(p, r, "out of memory");
                if (r < 0)
                        return fail(p, -EBADMSG, "entry name '%.200s' escapes the root", name);
                if (e.type == TAR_ENTRY_HARDLINK) {
                        r = tar_path_normalize(link, &e.link);
                        if (r < 0) {
                                free(e.path);
                                return fail(p, -EBADMSG, "hard link target '%.200s' escapes the root", link);
                        }
                        if (!e.link[0] || streq(e.link, e.path)) {
                                free(e.path);
                                free(e.link);
                                return fail(p, -EBADMSG, "hard link '%.200s' points at itself or the root", name);
                        }
                } else if (e.type == TAR_ENTRY_SYMLINK) {
                        if (!link[0]) {
                                free(e.path);
                                return fail(p, -EBADMSG, "symlink '%.200s' without a target", name);
                        }
                        e.link = steal_pointer(&link);
                }
                if (e.type != TAR_ENTRY_DIR && !e.path[0]) {
                        free(e.path);
                        free(e.link);
                        return fail(p, -EBADMSG, "non-directory entry for the root");
                }
                r = index_add(p, &e);
                if (r < 0) {
                        free(e.path);
                        free(e.link);
                        return r;
                }
        }

        /* Hard links and directories carry no data in practice; honour a size anyway. */
        p->skip = padded(usize);
        p->state = p->skip ? STATE_SKIP : STATE_HEADER;
        return 0;
}

static int process_ext(TarParser *p) {
        p->ext[p->ext_fill] = 0;
        int r = 0;
        switch (p->ext_kind) {
        case EXT_PAX:
                r = parse_pax(p, p->ext, p->ext_fill, &p->local, false);
                break;
        case EXT_PAX_GLOBAL:
                r = parse_pax(p, p->ext, p->ext_fill, &p->global, true);
                break;
        case EXT_LONGNAME:
        case EXT_LONGLINK: {
                size_t l = strnlen(p->ext, p->ext_fill);
                if (l > TAR_PATH_MAX)
                        return fail(p, -EBADMSG, "GNU long name longer than %u", TAR_PATH_MAX);
                char **t = p->ext_kind == EXT_LONGNAME ? &p->local.path : &p->local.linkpath;
                free(*t);
                *t = strndup(p->ext, l);
                if (!*t)
                        return fail(p, -ENOMEM, "out of memory");
                break;
        }
        }
        free(p->ext);
        p->ext = NULL;
        if (r < 0)
                return r;
        p->skip = p->ext_pad;
        p->state = p->skip ? STATE_SKIP : STATE_HEADER;
        return 0;
}

int tar_parser_feed(TarParser *p, const void *data, size_t n) {
        const uint8_t *d = data;
        int r;

        if (p->state == STATE_FAILED)
                return p->error;
        while (n > 0 || (p->state == STATE_EXT && p->ext_fill == p->ext_need)) {
                switch (p->state) {
                case STATE_HEADER: {
                        size_t k = MIN(n, BLOCK - p->header_fill);
                        memcpy(p->header + p->header_fill, d, k);
                        p->header_fill += k;
                        d += k;
                        n -= k;
                        p->pos += k;
                        if (p->header_fill == BLOCK) {
                                p->header_fill = 0;
                                r = process_header(p);
                                if (r < 0)
                                        return r;
                        }
                        break;
                }
                case STATE_EXT: {
                        size_t k = MIN(n, p->ext_need - p->ext_fill);
                        memcpy(p->ext + p->ext_fill, d, k);
                        p->ext_fill += k;
                        d += k;
                        n -= k;
                        p->pos += k;
                        if (p->ext_fill == p->ext_need) {
                                r = process_ext(p);
                                if (r < 0)
                                        return r;
                        }
                        break;
                }
                case STATE_SKIP: {
                        uint64_t k = MIN((uint64_t) n, p->skip);
                        p->skip -= k;
                        d += k;
                        n -= (size_t) k;
                        p->pos += k;
                        if (p->skip == 0)
                                p->state = STATE_HEADER;
                        break;
                }
                case STATE_END:
                        p->pos += n;
                        return 0;
                case STATE_FAILED:
                        return p->error;
                }
        }
        return 0;
}

int tar_parser_finish(TarParser *p, TarIndex **ret) {
        if (p->state == STATE_FAILED)
                return p->error;
        /* A missing end marker is tolerated at an entry boundary (like GNU tar). */
        if (!(p->state == STATE_END || (p->state == STATE_HEADER && p->header_fill == 0)))
                return fail(p, -EBADMSG, "archive truncated at offset %" PRIu64, p->pos);
        if (p->local.path || p->local.linkpath)
                return fail(p, -EBADMSG, "archive ends after an extended header");
        p->index->stream_size = p->pos;
        *ret = steal_pointer(&p->index);
        p->state = STATE_FAILED;
        p->error = -ESTALE;
        return 0;
}

int tar_index_build_from_buffer(const void *data, size_t n, TarIndex **ret, char *err, size_t errlen) {
        _cleanup_(tar_parser_freep) TarParser *p = NULL;
        int r = tar_parser_new(&p);
        if (r < 0)
                return r;
        r = tar_parser_feed(p, data, n);
        if (r >= 0)
                r = tar_parser_finish(p, ret);
        if (r < 0 && err)
                snprintf(err, errlen, "%s", tar_parser_error(p));
        return r;
}

/* ---- serialization: "PLTI" u32 version, u64 stream size, u64 count, then per entry:
 *      u8 type, u32 mode, u32 uid, u32 gid, i64 mtime, u64 size, u64 offset,
 *      u32 path_len, path, u32 link_len (0xffffffff = none), link.  Little endian. */

#define TAR_TABLE_MAGIC "PLTI"
#define TAR_TABLE_VERSION 1U

typedef struct Buf {
        char *data;
        size_t len, allocated;
        bool oom;
} Buf;

static void buf_put(Buf *b, const void *d, size_t n) {
        if (b->oom)
                return;
        if (b->len + n > b->allocated) {
                size_t na = MAX(b->allocated * 2, b->len + n + 256);
                char *nd = realloc(b->data, na);
                if (!nd) {
                        b->oom = true;
                        return;
                }
                b->data = nd;
                b->allocated = na;
        }
        memcpy(b->data + b->len, d, n);
        b->len += n;
}
static void buf_u8(Buf *b, uint8_t v) { buf_put(b, &v, 1); }
static void buf_u32(Buf *b, uint32_t v) {
        uint8_t x[4] = { v, v >> 8, v >> 16, v >> 24 };
        buf_put(b, x, 4);
}
static void buf_u64(Buf *b, uint64_t v) {
        buf_u32(b, (uint32_t) v);
        buf_u32(b, (uint32_t) (v >> 32));
}

typedef struct Rd {
        const uint8_t *d;
        size_t n, o;
        bool bad;
} Rd;
static const uint8_t *rd_take(Rd *r, size_t n) {
        if (r->bad || r->n - r->o < n) {
                r->bad = true;
                return NULL;
        }
        const uint8_t *p = r->d + r->o;
        r->o += n;
        return p;
}
static uint8_t rd_u8(Rd *r) {
        const uint8_t *p = rd_take(r, 1);
        return p ? p[0] : 0;
}
static uint32_t rd_u32(Rd *r) {
        const uint8_t *p = rd_take(r, 4);
        return p ? (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24 : 0;
}
static uint64_t rd_u64(Rd *r) {
        uint64_t lo = rd_u32(r);
        return lo | (uint64_t) rd_u32(r) << 32;
}

int tar_index_serialize(const TarIndex *t, char **ret, size_t *ret_len) {
        Buf b = {};
        buf_put(&b, TAR_TABLE_MAGIC, 4);
        buf_u32(&b, TAR_TABLE_VERSION);
        buf_u64(&b, t->stream_size);
        buf_u64(&b, t->n_entries);
        for (size_t i = 0; i < t->n_entries; i++) {
                const TarEntry *e = t->entries + i;
                buf_u8(&b, e->type);
                buf_u32(&b, e->mode);
                buf_u32(&b, e->uid);
                buf_u32(&b, e->gid);
                buf_u64(&b, (uint64_t) e->mtime_ns);
                buf_u64(&b, e->size);
                buf_u64(&b, e->offset);
                size_t pl = strlen(e->path);
                buf_u32(&b, (uint32_t) pl);
                buf_put(&b, e->path, pl);
                if (e->link) {
                        size_t ll = strlen(e->link);
                        buf_u32(&b, (uint32_t) ll);
                        buf_put(&b, e->link, ll);
                } else
                        buf_u32(&b, UINT32_MAX);
        }
        if (b.oom) {
                free(b.data);
                return -ENOMEM;
        }
        *ret = b.data;
        *ret_len = b.len;
        return 0;
}

int tar_index_deserialize(const void *data, size_t n, TarIndex **ret) {
        Rd r = { .d = data, .n = n };
        const uint8_t *m = rd_take(&r, 4);
        if (!m || memcmp(m, TAR_TABLE_MAGIC, 4) != 0 || rd_u32(&r) != TAR_TABLE_VERSION)
                return -EPROTO;
        _cleanup_(tar_index_freep) TarIndex *t = calloc(1, sizeof(TarIndex));
        if (!t)
                return -ENOMEM;
        t->stream_size = rd_u64(&r);
        uint64_t count = rd_u64(&r);
        if (r.bad || count > TAR_ENTRIES_MAX || count > (n - r.o) / 45)
                return -EBADMSG;
        t->entries = calloc(MAX(count, 1), sizeof(TarEntry));
        if (!t->entries)
                return -ENOMEM;
        t->n_allocated = MAX(count, 1);
        for (uint64_t i = 0; i < count; i++) {
                TarEntry *e = t->entries + i;
                e->type = rd_u8(&r);
                e->mode = rd_u32(&r);
                e->uid = rd_u32(&r);
                e->gid = rd_u32(&r);
                e->mtime_ns = (int64_t) rd_u64(&r);
                e->size = rd_u64(&r);
                e->offset = rd_u64(&r);
                uint32_t pl = rd_u32(&r);
                if (pl > TAR_PATH_MAX)
                        return -EBADMSG;
                const uint8_t *pp = rd_take(&r, pl);
                uint32_t ll = rd_u32(&r);
                if (r.bad || e->type >= _TAR_ENTRY_TYPE_MAX || (ll != UINT32_MAX && ll > TAR_PATH_MAX))
                        return -EBADMSG;
                const uint8_t *lp = ll != UINT32_MAX ? rd_take(&r, ll) : NULL;
                if (r.bad)
                        return -EBADMSG;
                e->path = strndup((const char *) pp, pl);
                if (lp)
                        e->link = strndup((const char *) lp, ll);
                t->n_entries = i + 1;
                if (!e->path || (lp && !e->link))
                        return -ENOMEM;
                t->string_bytes += pl + 1 + (lp ? ll + 1 : 0);
        }
        *ret = steal_pointer(&t);
        return 0;
}
