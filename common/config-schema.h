/* SPDX-License-Identifier: MIT */
#pragma once

/* The one schema of the configuration: every key that any module reads, its type and the
 * values it accepts, as a declarative table in config-schema.c. config_load() checks the
 * merged document (defaults included) against it before anything starts, so modules reading
 * their sections later can trust the shape. Adding a key or a section (auth, tls, ...) means
 * adding its node to that table and reading it in its module. */

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* 0 if merged (the user's document deep-merged over the defaults) conforms. Otherwise -EINVAL,
 * and err gets "<json path>: <problem>", e.g.
 * "channels.gates.prod:stable.signatur: unknown gate (known: not_blocked, ...)" or
 * "gc.retention[0].keep_last: expected a non-negative integer". user is the document as the
 * user wrote it, for the few checks that treat a default differently (NULL: merged is the
 * defaults alone, checked as if the user had written them). */
int config_schema_validate(json_t *merged, json_t *user, char *err, size_t errlen);

/* A configuration duration: a string parse_duration_ns() reads ("90s", "15m", "24h", "7d") or
 * a non-negative integer number of seconds. -EINVAL if v is neither, -ERANGE if it does not fit
 * int64 ns. */
int config_duration_ns(const json_t *v, int64_t *ret);
