/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Runs fn(userdata, i) for i in 0..n-1 on up to max_threads threads, the caller's among them
 * (the others are started for the call and joined before it returns, named name; they inherit
 * the caller's nice value and scheduling policy). Items are handed out in order, one at a time.
 * Once fn returned an error, or stop(userdata) (may be NULL; asked before each item) said true,
 * no further item starts: returns that error, or -ECANCELED. Threads that cannot be started
 * leave their share to the others. */
typedef int (*ParallelFn)(void *userdata, size_t i);
int parallel_for(size_t n, size_t max_threads, const char *name, ParallelFn fn, bool (*stop)(void *userdata),
                 void *userdata);
