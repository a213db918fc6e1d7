/* SPDX-License-Identifier: MIT */
#pragma once

/* Users and their bcrypt password hashes from an htpasswd file (`htpasswd -B`, Apache's format:
 * one "user:hash" per line). Only bcrypt is accepted ($2y$, $2b$, and $2a$ as written by old
 * tools), cost 4..31: an MD5 ($apr1$), SHA-1 ({SHA}), crypt(3) DES or plain entry is refused at
 * load with its line number, since any of them can be brute-forced offline; so are $1$, $5$, $6$,
 * yescrypt and the other crypt(3) schemes, and $2x$ (crypt_blowfish's bug-compatibility mode), each
 * named in the message: "line 3: user bob: MD5 ($apr1$) hash refused: only bcrypt ($2y$/$2b$) is
 * accepted; re-create it with htpasswd -B". Blank lines and lines starting with '#' are skipped;
 * lines end with LF or CRLF, the last one may have no end. A user name is 1..128 bytes of printable
 * ASCII (0x20-0x7e) other than ':', not ending with a space (whitespace around the line is not part
 * of it); a second ':' on a line is refused; a user given twice is refused.
 *
 * Verification uses libcrypt's crypt_r() and compares in constant time. Verifying an unknown user
 * runs bcrypt against a dummy hash of the same cost, so that timing does not tell which users
 * exist (the dummy is a bcrypt setting of the file's most common cost, made at load; a file with no
 * users at all has nothing to hide and runs no bcrypt). A password of CRYPT_MAX_PASSPHRASE_SIZE
 * (512) bytes or more never matches. An Htpasswd is immutable after load and can be shared by
 * threads; reloading makes a new one. */

#include <stdbool.h>
#include <stddef.h>

#include "common/macros.h"

typedef struct Htpasswd Htpasswd;

/* -EINVAL with "line N: <problem>" in err for a bad line; -ENOMEM. */
int htpasswd_parse(const char *text, size_t len, Htpasswd **ret, char *err, size_t errlen);
/* The same from a file of at most 64 MiB (-errno and the path in err if unreadable, -EFBIG if
 * larger); err starts with the path for a bad line too: "/etc/plura/htpasswd: line 3: ...". */
int htpasswd_load(const char *path, Htpasswd **ret, char *err, size_t errlen);
Htpasswd *htpasswd_free(Htpasswd *h);
DEFINE_TRIVIAL_CLEANUP_FUNC(Htpasswd *, htpasswd_free);

size_t htpasswd_size(const Htpasswd *h);
bool htpasswd_has_user(const Htpasswd *h, const char *user);
/* 1 if password is user's, 0 if not (or no such user), -errno if bcrypt itself failed. Costs one
 * bcrypt at the entry's cost: callers cache successes (registry-api/auth.c). */
int htpasswd_verify(const Htpasswd *h, const char *user, const char *password);
