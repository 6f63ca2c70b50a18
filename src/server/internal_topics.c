/* Internal topics: records the broker writes and reads itself (__consumer_offsets).
 * They go through the ordinary partition log, with acks=all durability, and are read
 * back at start-up to rebuild in-memory state. */
#include "server/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct internal_append {
    void (*done)(void *arg, int16_t error);
    void *arg;
    int16_t error;
};

static void internal_append_durable(void *arg)
{
    struct internal_append *a = arg;
    a->done(a->arg, a->error);
    free(a);
}

void server_append_internal(struct server *s, struct partition *p, const struct record_in *recs,
                            size_t n, void (*done)(void *arg, int16_t error), void *arg)
{
    struct buf batch;
    buf_init(&batch);
    batch_encode(&batch, recs, n, time_wall_ms());
    struct log_append_result res;
    int rc = log_append(p->log, batch.data, batch.len, 0, time_wall_ms(), &res);
    buf_free(&batch);
    if (rc != 0) {
        log_error("server", "append to internal partition %s-%d failed: %s", p->topic->name,
                  p->index, storage_strerror(rc));
        done(arg, kerr_from_storage(rc));
        return;
    }
    server_after_append(s, p, true);
    struct internal_append *a = xcalloc(1, sizeof *a);
    a->done = done;
    a->arg = arg;
    struct durable_wait *w = durable_wait_new(internal_append_durable, a);
    durable_wait_add(w, p, res.last_offset + 1, &a->error);
    durable_wait_submit(s, w);
}

int server_scan_partition(struct server *s, struct partition *p,
                          void (*fn)(void *arg, const struct record *r), void *arg)
{
    (void)s;
    int64_t offset = log_start_offset(p->log);
    int64_t end = log_end_offset(p->log);
    struct buf data;
    buf_init(&data);
    int rc = 0;
    while (offset < end && rc == 0) {
        struct log_read_result rr;
        rc = log_read(p->log, offset, 1 << 20, end, &rr);
        if (rc == STORAGE_ERR_CORRUPT) {
            /* Damage kept on disk: load what is around it, the same after a clean stop
             * as after a crash, and say what was lost. */
            int64_t next = log_next_readable_offset(p->log, offset);
            log_error("server",
                      "internal partition %s-%d: offsets %lld to %lld are damaged "
                      "and skipped; the group state they recorded is lost (later records "
                      "of the same groups still apply)",
                      p->topic->name, p->index, (long long)offset, (long long)(next - 1));
            storage_read_turn_end();
            offset = next;
            rc = 0;
            continue;
        }
        if (rc != 0 || rr.len == 0)
            break;
        buf_reset(&data);
        rc = pread_exact(rr.fd, buf_extend(&data, (size_t)rr.len), (size_t)rr.len, rr.file_pos);
        /* The segment was lent until the read turn ends; a scan of many partitions at
         * start-up must not hold them all (storage's open-file bound). */
        storage_read_turn_end();
        if (rc != 0)
            break;
        struct batch_iter it;
        struct batch_info info;
        batch_iter_init(&it, data.data, (size_t)rr.len);
        int more = 0;
        while (rc == 0 && (more = batch_iter_next(&it, &info, true)) > 0) {
            offset = batch_last_offset(&info) + 1;
            if (batch_compression(&info) != 0 || (info.attributes & BATCH_ATTR_CONTROL))
                continue; /* the broker writes its internal records uncompressed */
            struct record_iter ri;
            struct record r;
            record_iter_init(&ri, data.data + it.batch_pos, &info);
            int got;
            while ((got = record_iter_next(&ri, &r)) > 0)
                if (r.offset >= log_start_offset(p->log))
                    fn(arg, &r);
            if (got < 0)
                rc = got;
        }
        if (rc == 0 && more < 0)
            rc = more;
    }
    buf_free(&data);
    if (rc != 0)
        log_error("server", "reading internal partition %s-%d at offset %lld failed: %s",
                  p->topic->name, p->index, (long long)offset, storage_strerror(rc));
    return rc;
}

int server_ensure_internal_topic(struct server *s, const char *name, int32_t partitions,
                                 const struct config_entry *configs, size_t config_count)
{
    if (cluster_topic_find(s->cluster, slice_from_cstr(name)))
        return 0;
    /* Start-up: the change completes inside the call. */
    struct change_outcome out = {0};
    cluster_create_topic(s->cluster, slice_from_cstr(name), partitions, 1, configs, config_count,
                         false, change_outcome_keep, &out);
    ASSERT(out.done);
    if (out.err != CLUSTER_OK) {
        log_error("server", "cannot create internal topic %s: %s", name, out.why);
        return -1;
    }
    log_info("server", "created internal topic %s with %d partitions", name, partitions);
    return 0;
}
