/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"
#include "util.h"

static _Atomic int64_t fake_now_ns = 0;
static atomic_int fake_env_checked = 0;

void clock_set_fake(int64_t ns) {
        atomic_store(&fake_now_ns, ns);
        atomic_store(&fake_env_checked, 1);
}

int clock_parse_fake_now(const char *s, int64_t *ret_ns) {
        if (!s || !*s)
                return -EINVAL;
        int64_t ns;
        if (strspn(s, "0123456789") == strlen(s)) {
                errno = 0;
                char *end;
                unsigned long long secs = strtoull(s, &end, 10);
                if (errno || secs > (unsigned long long) (INT64_MAX / (int64_t) NSEC_PER_SEC))
                        return -EINVAL;
                ns = (int64_t) secs * (int64_t) NSEC_PER_SEC;
        } else if (parse_timestamp_ns(s, &ns) < 0)
                return -EINVAL;
        /* 0 means "no fake clock" */
        if (ns <= 0)
                return -EINVAL;
        *ret_ns = ns;
        return 0;
}

int clock_fake_from_env(void) {
        atomic_store(&fake_env_checked, 1);
        const char *e = getenv("PLURA_FAKE_NOW");
        if (!e)
                return 0;
        int64_t ns;
        if (clock_parse_fake_now(e, &ns) < 0)
                return log_error_errno(EINVAL, "PLURA_FAKE_NOW=\"%s\": expected whole seconds since the epoch "
                                       "(1735689600) or an RFC 3339 time (2025-01-01T00:00:00Z) after 1970", e);
        atomic_store(&fake_now_ns, ns);
        return 0;
}

int64_t clock_now_ns(void) {
        if (!atomic_load(&fake_env_checked))
                (void) clock_fake_from_env();
        int64_t f = atomic_load(&fake_now_ns);
        if (f > 0)
                return f;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * (int64_t) NSEC_PER_SEC + ts.tv_nsec;
}

uint64_t clock_monotonic_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * NSEC_PER_SEC + (uint64_t) ts.tv_nsec;
}

char *format_timestamp(char *buf, size_t n, int64_t ns) {
        time_t t = (time_t) (ns / (int64_t) NSEC_PER_SEC);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
        return buf;
}

char *format_bytes(char *buf, size_t n, uint64_t bytes) {
        static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
        double v = (double) bytes;
        size_t u = 0;
        while (v >= 1024.0 && u + 1 < ELEMENTSOF(units)) {
                v /= 1024.0;
                u++;
        }
        if (u == 0)
                snprintf(buf, n, "%" PRIu64 " B", bytes);
        else
                snprintf(buf, n, "%.1f %s", v, units[u]);
        return buf;
}

int parse_duration_ns(const char *s, int64_t *ret) {
        if (!s || !*s)
                return -EINVAL;
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (errno || end == s || v < 0)
                return -EINVAL;
        double mul = 1;
        if (*end == 0 || streq(end, "s"))
                mul = 1;
        else if (streq(end, "ms"))
                mul = 0.001;
        else if (streq(end, "m"))
                mul = 60;
        else if (streq(end, "h"))
                mul = 3600;
        else if (streq(end, "d"))
                mul = 86400;
        else if (streq(end, "w"))
                mul = 7 * 86400;
        else
                return -EINVAL;
        if (!isfinite(v)) /* strtod accepts "nan" and "inf" */
                return -EINVAL;
        double ns = v * mul * (double) NSEC_PER_SEC;
        /* (double) INT64_MAX rounds up to 2^63, which does not fit: compare with >= */
        if (ns >= (double) INT64_MAX)
                return -ERANGE;
        *ret = (int64_t) ns;
        return 0;
}

/* n decimal digits at *p into *ret; advances *p */
static bool parse_fixed_digits(const char **p, size_t n, int *ret) {
        int v = 0;
        for (size_t i = 0; i < n; i++) {
                char c = (*p)[i];
                if (c < '0' || c > '9')
                        return false;
                v = v * 10 + (c - '0');
        }
        *p += n;
        *ret = v;
        return true;
}

static bool is_leap_year(int y) {
        return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 1970-01-01 to y-m-d of the proleptic Gregorian calendar (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int y, int m, int d) {
        y -= m <= 2;
        int64_t era = (y >= 0 ? y : y - 399) / 400;
        int64_t yoe = y - era * 400;
        int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + doe - 719468;
}

int parse_timestamp_ns(const char *s, int64_t *ret) {
        static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
        if (!s)
                return -EINVAL;
        const char *p = s;
        int Y, M, D, h, m, sec;
        if (!parse_fixed_digits(&p, 4, &Y) || *p++ != '-' || !parse_fixed_digits(&p, 2, &M) || *p++ != '-' ||
            !parse_fixed_digits(&p, 2, &D))
                return -EINVAL;
        if (!(*p == 'T' || *p == 't' || *p == ' '))
                return -EINVAL;
        p++;
        if (!parse_fixed_digits(&p, 2, &h) || *p++ != ':' || !parse_fixed_digits(&p, 2, &m) || *p++ != ':' ||
            !parse_fixed_digits(&p, 2, &sec))
                return -EINVAL;
        if (M < 1 || M > 12 || D < 1 || D > mdays[M - 1] + (M == 2 && is_leap_year(Y)) || h > 23 || m > 59 || sec > 60)
                return -EINVAL;
        int64_t frac = 0;
        if (*p == '.') {
                p++;
                int digits = 0;
                int64_t scale = (int64_t) NSEC_PER_SEC;
                for (; *p >= '0' && *p <= '9'; p++, digits++)
                        if (digits < 9) {
                                scale /= 10;
                                frac += (*p - '0') * scale;
                        }
                if (digits == 0)
                        return -EINVAL;
        }
        int64_t off = 0;
        if (*p == 'Z' || *p == 'z')
                p++;
        else if (*p == '+' || *p == '-') {
                int sign = *p++ == '-' ? -1 : 1, oh, om;
                if (!parse_fixed_digits(&p, 2, &oh) || *p++ != ':' || !parse_fixed_digits(&p, 2, &om) || oh > 23 || om > 59)
                        return -EINVAL;
                off = sign * (oh * 3600 + om * 60);
        } else
                return -EINVAL;
        if (*p)
                return -EINVAL;
        /* at most ±(9999 years + a day) of seconds: no overflow before the ns multiplication */
        int64_t secs = days_from_civil(Y, M, D) * 86400 + h * 3600 + m * 60 + sec - off, ns;
        if (__builtin_mul_overflow(secs, (int64_t) NSEC_PER_SEC, &ns) || __builtin_add_overflow(ns, frac, &ns))
                return -ERANGE;
        *ret = ns;
        return 0;
}

/* The length of the well-formed UTF-8 sequence at p (before e), 0 if there is none (a NUL is none). */
static size_t utf8_sequence_length(const uint8_t *p, const uint8_t *e) {
        uint8_t c = *p;
        if (c == 0)
                return 0;
        if (c < 0x80)
                return 1;
        size_t len;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0)
                len = 2, cp = c & 0x1f, min = 0x80;
        else if ((c & 0xf0) == 0xe0)
                len = 3, cp = c & 0x0f, min = 0x800;
        else if ((c & 0xf8) == 0xf0)
                len = 4, cp = c & 0x07, min = 0x10000;
        else
                return 0;
        if ((size_t) (e - p) < len)
                return 0;
        for (size_t i = 1; i < len; i++) {
                if ((p[i] & 0xc0) != 0x80)
                        return 0;
                cp = cp << 6 | (p[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        return len;
}

bool utf8_is_valid(const char *s, size_t n) {
        const uint8_t *p = (const uint8_t *) s, *e = p + n;
        while (p < e) {
                size_t l = utf8_sequence_length(p, e);
                if (l == 0)
                        return false;
                p += l;
        }
        return true;
}

char *utf8_sanitize(char *s) {
        uint8_t *p = (uint8_t *) s, *e = p + strlen(s);
        while (p < e) {
                size_t l = utf8_sequence_length(p, e);
                if (l == 0)
                        *p++ = '?';
                else
                        p += l;
        }
        return s;
}

int array_reserve(void **array, size_t *allocated, size_t need, size_t elem_size) {
        assert(array && allocated && elem_size > 0);
        if (need <= *allocated)
                return 0;
        size_t n = *allocated ? *allocated : 16;
        while (n < need) {
                if (n > SIZE_MAX / 2)
                        return -ENOMEM;
                n *= 2;
        }
        if (n > SIZE_MAX / elem_size)
                return -ENOMEM;
        void *p = realloc(*array, n * elem_size);
        if (!p)
                return -ENOMEM;
        *array = p;
        *allocated = n;
        return 0;
}

int mkdir_p(const char *path, mode_t mode) {
        _cleanup_free_ char *p = strdup(path);
        if (!p)
                return -ENOMEM;
        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = 0;
                if (mkdir(p, mode) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        if (mkdir(p, mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

int fsync_path(const char *dirpath) {
        _cleanup_close_ int fd = open(dirpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fsync(fd) < 0)
                return -errno;
        return 0;
}

int fsync_directory_of(const char *path) {
        _cleanup_free_ char *d = strdup(path);
        if (!d)
                return -ENOMEM;
        char *slash = strrchr(d, '/');
        if (!slash)
                return fsync_path(".");
        if (slash == d)
                slash[1] = 0;
        else
                *slash = 0;
        return fsync_path(d);
}

int loop_write(int fd, const void *buf, size_t n) {
        const uint8_t *p = buf;
        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        return -EIO;
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

ssize_t loop_read(int fd, void *buf, size_t n) {
        uint8_t *p = buf;
        size_t done = 0;
        while (done < n) {
                ssize_t k = read(fd, p + done, n - done);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                done += (size_t) k;
        }
        return (ssize_t) done;
}

ssize_t loop_pread(int fd, void *buf, size_t n, off_t offset) {
        uint8_t *p = buf;
        size_t done = 0;
        while (done < n) {
                ssize_t k = pread(fd, p + done, n - done, offset + (off_t) done);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                done += (size_t) k;
        }
        return (ssize_t) done;
}

int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode) {
        char rnd[37];
        int r = uuid_random(rnd);
        if (r < 0)
                return r;
        _cleanup_free_ char *tmp = strdup_printf("%s.tmp-%s", path, rnd);
        if (!tmp)
                return -ENOMEM;
        _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        if (fd < 0)
                return -errno;
        r = loop_write(fd, data, len);
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (r >= 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0) {
                unlink(tmp);
                return r;
        }
        return fsync_directory_of(path);
}

int read_full_file(const char *path, size_t max, char **ret, size_t *ret_size) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if ((uint64_t) st.st_size > max)
                return -EFBIG;
        _cleanup_free_ char *buf = malloc((size_t) st.st_size + 1);
        if (!buf)
                return -ENOMEM;
        ssize_t n = loop_read(fd, buf, (size_t) st.st_size);
        if (n < 0)
                return (int) n;
        buf[n] = 0;
        *ret = steal_pointer(&buf);
        if (ret_size)
                *ret_size = (size_t) n;
        return 0;
}

void hex_encode(const uint8_t *data, size_t n, char *out) {
        static const char hex[] = "0123456789abcdef";
        for (size_t i = 0; i < n; i++) {
                out[2 * i] = hex[data[i] >> 4];
                out[2 * i + 1] = hex[data[i] & 15];
        }
        out[2 * n] = 0;
}

static int unhex_char(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

int hex_decode(const char *s, size_t slen, uint8_t *out) {
        if (slen % 2)
                return -EINVAL;
        for (size_t i = 0; i < slen / 2; i++) {
                int a = unhex_char(s[2 * i]), b = unhex_char(s[2 * i + 1]);
                if (a < 0 || b < 0)
                        return -EINVAL;
                out[i] = (uint8_t) (a << 4 | b);
        }
        return (int) (slen / 2);
}

int uuid_random(char out[37]) {
        uint8_t b[16];
        if (getrandom(b, sizeof(b), 0) != (ssize_t) sizeof(b))
                return -errno ?: -EIO;
        b[6] = (uint8_t) ((b[6] & 0x0f) | 0x40);
        b[8] = (uint8_t) ((b[8] & 0x3f) | 0x80);
        snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
        return 0;
}

bool uuid_is_valid(const char *s) {
        if (!s || strlen(s) != 36)
                return false;
        for (int i = 0; i < 36; i++) {
                if (i == 8 || i == 13 || i == 18 || i == 23) {
                        if (s[i] != '-')
                                return false;
                } else if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        }
        return true;
}

/* Backtracking over '*' and '**' remembers the (pattern, name) positions that failed: without it,
 * a pattern of many stars takes exponential time ("***...*x" against a long name ran for minutes
 * in fuzz-acl). With it, each pair is tried at most once. */
typedef struct GlobMemo {
        const char *p0, *n0;
        size_t nl;
        uint8_t *failed; /* bit (p - p0) * (nl + 1) + (n - n0) */
} GlobMemo;

static bool glob_failed_before(GlobMemo *m, const char *p, const char *n) {
        size_t bit = (size_t) (p - m->p0) * (m->nl + 1) + (size_t) (n - m->n0);
        return m->failed && (m->failed[bit / 8] >> (bit % 8)) & 1;
}

static bool glob_fail(GlobMemo *m, const char *p, const char *n) {
        size_t bit = (size_t) (p - m->p0) * (m->nl + 1) + (size_t) (n - m->n0);
        if (m->failed)
                m->failed[bit / 8] |= (uint8_t) (1U << (bit % 8));
        return false;
}

static bool glob_match_at(GlobMemo *m, const char *p, const char *n) {
        if (glob_failed_before(m, p, n))
                return false;
        const char *p_in = p, *n_in = n;
        for (;;) {
                if (*p == 0)
                        return *n == 0 || glob_fail(m, p_in, n_in);
                if (p[0] == '*' && p[1] == '*') {
                        const char *rest = p + 2;
                        /* "a/ **" also matches "a" itself */
                        if (*rest == 0)
                                return true;
                        if (*rest == '/' && glob_match_at(m, rest + 1, n))
                                return true;
                        for (const char *s = n;; s++) {
                                if (glob_match_at(m, rest, s))
                                        return true;
                                if (*s == 0)
                                        return glob_fail(m, p_in, n_in);
                        }
                }
                if (*p == '*') {
                        for (const char *s = n;; s++) {
                                if (glob_match_at(m, p + 1, s))
                                        return true;
                                if (*s == 0 || *s == '/')
                                        return glob_fail(m, p_in, n_in);
                        }
                }
                if (*n == 0)
                        return glob_fail(m, p_in, n_in);
                if (*p == '?') {
                        if (*n == '/')
                                return glob_fail(m, p_in, n_in);
                } else if (*p != *n)
                        return glob_fail(m, p_in, n_in);
                p++;
                n++;
        }
}

bool repo_glob_match(const char *pattern, const char *name) {
        if (!pattern || !name)
                return false;
        /* "apps/ **" also matches the bare prefix "apps" */
        size_t pl = strlen(pattern), nl = strlen(name);
        if (pl >= 3 && streq(pattern + pl - 3, "/**") && strncmp(pattern, name, pl - 3) == 0 && name[pl - 3] == 0)
                return true;
        GlobMemo m = { .p0 = pattern, .n0 = name, .nl = nl };
        /* only patterns with stars backtrack; a plain one needs no memory */
        _cleanup_free_ uint8_t *bits = strchr(pattern, '*') ? calloc(((pl + 1) * (nl + 1) + 7) / 8, 1) : NULL;
        m.failed = bits; /* allocation failure: unmemoized, still correct */
        return glob_match_at(&m, pattern, name);
}

char *strdup_printf(const char *fmt, ...) {
        va_list ap;
        char *s = NULL;
        va_start(ap, fmt);
        int r = vasprintf(&s, fmt, ap);
        va_end(ap);
        return r < 0 ? NULL : s;
}
