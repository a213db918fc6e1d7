/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "macros.h"

#define NSEC_PER_SEC UINT64_C(1000000000)
#define NSEC_PER_MSEC UINT64_C(1000000)
#define USEC_PER_SEC UINT64_C(1000000)

/* Wall clock in ns since the epoch. Tests inject time with clock_set_fake() or the
 * PLURA_FAKE_NOW environment variable, never with sleep. */
int64_t clock_now_ns(void);
void clock_set_fake(int64_t ns); /* 0 turns the fake clock off */
uint64_t clock_monotonic_ns(void);
/* A PLURA_FAKE_NOW value: whole seconds since the epoch ("1735689600") or an RFC 3339 time
 * ("2025-01-01T00:00:00Z"); anything else, or a time not after the epoch, is -EINVAL. */
int clock_parse_fake_now(const char *s, int64_t *ret_ns);
/* Sets the fake clock from PLURA_FAKE_NOW, if set. A value that is not a time is logged (naming
 * the variable and the value) and returned as -EINVAL, the fake clock left off: main() calls
 * this first and exits on failure. clock_now_ns() calls it once if nothing did. */
int clock_fake_from_env(void);

/* FNV-1a over n bytes, continuing from h (start with HASH_FNV1A_INIT): for hash tables and lock
 * stripes, not for anything an attacker must not steer. */
#define HASH_FNV1A_INIT UINT64_C(14695981039346656037)
static inline uint64_t hash_fnv1a(const void *p, size_t n, uint64_t h) {
        const uint8_t *b = p;
        for (size_t i = 0; i < n; i++)
                h = (h ^ b[i]) * UINT64_C(1099511628211);
        return h;
}

/* RFC 3339: YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM), 't' or ' ' for 'T' and 'z' for 'Z'
 * accepted, years 0000-9999, fractions beyond ns truncated, a leap second (:60) is the next
 * second. -EINVAL if it is not such a time, -ERANGE if it does not fit int64 ns. */
int parse_timestamp_ns(const char *s, int64_t *ret);

/* "2026-11-22T05:31:57Z" (buffer of at least 32 bytes) */
char *format_timestamp(char *buf, size_t n, int64_t ns);
/* "1.5 GiB" (buffer of at least 16 bytes) */
char *format_bytes(char *buf, size_t n, uint64_t bytes);
/* Parses "90s", "15m", "1h", "7d", "2w" or a plain number of seconds into ns. */
int parse_duration_ns(const char *s, int64_t *ret);

/* Makes room for at least need elements in a growing array: *allocated doubles (from 16) until it
 * holds need. 0, or -ENOMEM (the array and *allocated untouched). ARRAY_RESERVE(v, allocated, need)
 * for a typed array v. */
int array_reserve(void **array, size_t *allocated, size_t need, size_t elem_size);
#define ARRAY_RESERVE(array, allocated, need) \
        array_reserve((void **) &(array), &(allocated), (need), sizeof(*(array)))

int mkdir_p(const char *path, mode_t mode);
int fsync_directory_of(const char *path);
int fsync_path(const char *dirpath);
/* Atomic write: O_EXCL temp in dir of path, write, fsync, rename, fsync dir. */
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* Reads a whole file, refusing files larger than max (returns -EFBIG). */
int read_full_file(const char *path, size_t max, char **ret, size_t *ret_size);
int loop_write(int fd, const void *buf, size_t n);
ssize_t loop_read(int fd, void *buf, size_t n);
ssize_t loop_pread(int fd, void *buf, size_t n, off_t offset);

/* Well-formed UTF-8 of exactly n bytes: no NUL byte, no overlong form, no surrogate, <= U+10FFFF. */
bool utf8_is_valid(const char *s, size_t n);
/* Replaces, in place, each byte that is not part of well-formed UTF-8 with '?'; returns s. */
char *utf8_sanitize(char *s);

void hex_encode(const uint8_t *data, size_t n, char *out /* 2n+1 */);
int hex_decode(const char *s, size_t slen, uint8_t *out);

/* Random RFC 4122 v4 UUID, lower case, 36 chars + NUL. */
int uuid_random(char out[37]);
bool uuid_is_valid(const char *s);

/* Shell-style glob for repository names: '*' matches within one path component,
 * '**' matches across components, '?' one character. */
bool repo_glob_match(const char *pattern, const char *name);

char *strdup_printf(const char *fmt, ...) _printf_(1, 2);
