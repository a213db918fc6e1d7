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
 * PLURA_FAKE_NOW environment variable (seconds since the epoch), never with sleep. */
int64_t clock_now_ns(void);
void clock_set_fake(int64_t ns); /* 0 turns the fake clock off */
uint64_t clock_monotonic_ns(void);

/* "2026-11-22T05:31:57Z" (buffer of at least 32 bytes) */
char *format_timestamp(char *buf, size_t n, int64_t ns);
/* "1.5 GiB" (buffer of at least 16 bytes) */
char *format_bytes(char *buf, size_t n, uint64_t bytes);
/* Parses "90s", "15m", "1h", "7d", "2w" or a plain number of seconds into ns. */
int parse_duration_ns(const char *s, int64_t *ret);

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

void hex_encode(const uint8_t *data, size_t n, char *out /* 2n+1 */);
int hex_decode(const char *s, size_t slen, uint8_t *out);

/* Random RFC 4122 v4 UUID, lower case, 36 chars + NUL. */
int uuid_random(char out[37]);
bool uuid_is_valid(const char *s);

/* Shell-style glob for repository names: '*' matches within one path component,
 * '**' matches across components, '?' one character. */
bool repo_glob_match(const char *pattern, const char *name);

char *strdup_printf(const char *fmt, ...) _printf_(1, 2);
