/* SPDX-License-Identifier: MIT */
/* RFC 3339 times (parse_timestamp_ns: hold "until", PLURA_FAKE_NOW) and PLURA_FAKE_NOW values.
 * Invariants: only -EINVAL or -ERANGE as errors; a time that parses, written back in UTC with
 * nine fraction digits, parses to the same ns (differential against gmtime_r for the calendar);
 * clock_parse_fake_now takes exactly the positive integers and the times after the epoch. */
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "common/macros.h"
#include "common/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *s = malloc(size + 1);
        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = 0;

        int64_t ns = 0;
        int r = parse_timestamp_ns(s, &ns);
        if (r == 0) {
                int64_t secs = ns / (int64_t) NSEC_PER_SEC, frac = ns % (int64_t) NSEC_PER_SEC;
                if (frac < 0)
                        secs--, frac += (int64_t) NSEC_PER_SEC;
                time_t t = (time_t) secs;
                struct tm tm;
                if (!gmtime_r(&t, &tm))
                        abort();
                /* an offset can move a year-0000 or year-9999 time out of the four-digit years */
                if (tm.tm_year + 1900 >= 0 && tm.tm_year + 1900 <= 9999) {
                        char canon[64];
                        snprintf(canon, sizeof canon, "%04d-%02d-%02dT%02d:%02d:%02d.%09" PRId64 "Z", tm.tm_year + 1900,
                                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
                        int64_t ns2 = 0;
                        if (parse_timestamp_ns(canon, &ns2) != 0 || ns2 != ns)
                                abort();
                }
        } else if (r != -EINVAL && r != -ERANGE)
                abort();

        int64_t fake = 0;
        int k = clock_parse_fake_now(s, &fake);
        size_t n = strlen(s); /* the input may hold a NUL: the C string ends there */
        bool digits = n > 0 && strspn(s, "0123456789") == n;
        if (k == 0 && (fake <= 0 || (!digits && (r != 0 || fake != ns))))
                abort();
        if (k < 0 && k != -EINVAL)
                abort();
        if (k < 0 && r == 0 && ns > 0 && !digits)
                abort();
        free(s);
        return 0;
}
