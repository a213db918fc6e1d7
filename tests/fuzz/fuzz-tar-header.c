/* SPDX-License-Identifier: MIT */
/* The tar entry table parser (fusefs/tar-index.c) on arbitrary bytes: whole-buffer parse, the
 * same stream fed in slices (the gzip indexer's path), and the table's binary encoding. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "fusefs/layer-index.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static int init;
        if (!init) {
                log_set_max_level(LOG_LEVEL_ERROR);
                init = 1;
        }
        TarIndex *t = NULL;
        int r = tar_index_build_from_buffer(data, size, &t, NULL, 0);

        /* slices of varying size must give the same verdict and table */
        TarParser *p = NULL;
        TarIndex *t2 = NULL;
        if (tar_parser_new(&p) < 0)
                abort();
        size_t off = 0, step = size ? (size_t) data[0] % 700 + 1 : 1;
        int r2 = 0;
        while (off < size && r2 >= 0) {
                size_t k = size - off < step ? size - off : step;
                r2 = tar_parser_feed(p, data + off, k);
                off += k;
        }
        if (r2 >= 0)
                r2 = tar_parser_finish(p, &t2);
        tar_parser_free(p);
        if ((r < 0) != (r2 < 0))
                abort();

        if (r >= 0) {
                if (t->n_entries != t2->n_entries)
                        abort();
                for (size_t i = 0; i < t->n_entries; i++) {
                        const TarEntry *e = t->entries + i;
                        if (strcmp(e->path, t2->entries[i].path) != 0 || e->offset != t2->entries[i].offset)
                                abort();
                        if (e->path[0] == '/' || strcmp(e->path, "..") == 0 || strncmp(e->path, "../", 3) == 0 ||
                            strstr(e->path, "/../"))
                                abort();
                        if (e->type == TAR_ENTRY_FILE && e->size > TAR_ENTRY_SIZE_MAX)
                                abort();
                }
                char *ser = NULL;
                size_t sl;
                TarIndex *t3 = NULL;
                if (tar_index_serialize(t, &ser, &sl) < 0 || tar_index_deserialize(ser, sl, &t3) < 0 ||
                    t3->n_entries != t->n_entries)
                        abort();
                tar_index_free(t3);
                free(ser);
        }
        /* the decoder of stored tables must never trust its input either */
        TarIndex *t4 = NULL;
        if (tar_index_deserialize(data, size, &t4) >= 0)
                tar_index_free(t4);

        tar_index_free(t);
        tar_index_free(t2);
        return 0;
}
