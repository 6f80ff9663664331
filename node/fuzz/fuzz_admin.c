/*
 * fuzz_admin.c: fuzz target of the admin API's request session
 * (nd__admin_sess_feed, node/src/nd_admin.c): arbitrary bytes, split into
 * reads at input-chosen points, against a node with no sockets. Checks that
 * every feed consumes within bounds, that the output is only ever whole HTTP
 * responses, and that a closing session takes nothing more.
 */
#include "nd_int.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /* The first byte picks the read size (1..256), like a slow or fast peer. */
    size_t chunk = (size_t)data[0] + 1;
    data++;
    size--;

    struct nd_node *n = wr_xcalloc(1, sizeof(*n));
    nd_config_init(&n->cfg);
    nd__registry_init(&n->reg);
    nd_list_init(&n->tuncs);
    memcpy(n->node_id, "fuzz", 5);
    memcpy(n->cluster, "c", 2);
    struct nd_admin_sess *s = nd__admin_sess_new(n);

    size_t off = 0;
    while (off < size) {
        size_t k = size - off < chunk ? size - off : chunk;
        struct wr_slice in = wr_slice_make(data + off, k);
        /* Feed one read the way nd_admin.c does: request by request. */
        while (in.len > 0) {
            bool was_closing = nd__admin_sess_closing(s);
            ssize_t r = nd__admin_sess_feed(s, in);
            WR_ASSERT(r <= (ssize_t)in.len);
            if (was_closing)
                WR_ASSERT(r == 0);
            struct wr_buf *out = nd__admin_sess_out(s);
            if (out->len > 0)
                WR_ASSERT(out->len >= 9 && memcmp(out->data + out->off, "HTTP/1.1 ", 9) == 0);
            wr_buf_consume(out, out->len);
            if (r < 0)
                WR_ASSERT(nd__admin_sess_closing(s));
            if (r <= 0)
                break;
            in = wr_slice_adv(in, (size_t)r);
        }
        if (nd__admin_sess_closing(s))
            break;
        off += k;
    }
    nd__admin_sess_free(s);
    nd__registry_cleanup(&n->reg);
    free(n);
    return 0;
}
