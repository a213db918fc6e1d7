/* SPDX-License-Identifier: MIT */
/* PLACEHOLDER (issue 6 replaces this file): RCA hold records and their WORM export. */
#include "storage/storage.h"

bool hold_is_active(const HoldInfo *h, int64_t now) {
        return h->released == 0 && (h->until == 0 || h->until > now);
}

int store_holds_foreach(Store *s, IndexSnapshot *snap, HoldIterFn fn, void *userdata) {
        return 0;
}

int store_hold_ensure_exported(Store *s, const HoldInfo *h, json_t *worm, char **ret_bundle) {
        return -EOPNOTSUPP;
}

int store_hold_forget(Store *s, const HoldInfo *h) {
        return -EOPNOTSUPP;
}
