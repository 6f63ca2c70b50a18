/* DescribeLogDirs (key 35), v1-v4: this broker's one log directory (log.dirs' first),
 * with every partition it holds a replica of (or those named), each with its size on
 * disk and its offset lag: how far its log end is behind the high watermark it knows (0
 * on a leader, a follower's distance from its leader's). v4 adds the directory's
 * filesystem's total and usable bytes. Tools: kafka-log-dirs.sh, Admin.describeLogDirs. */
#include "server/internal.h"

#include <string.h>
#include <sys/statvfs.h>

typedef struct describe_log_dirs_response_results_topics topic_out;
typedef struct describe_log_dirs_response_results_topics_partitions part_out;

static void fill_partition(const struct partition *p, part_out *out)
{
    describe_log_dirs_response_results_topics_partitions_init(out);
    out->partition_index = p->index;
    out->partition_size = log_size_bytes(p->log);
    int64_t lag = partition_high_watermark(p) - log_end_offset(p->log);
    if (p->role == PARTITION_FOLLOWER)
        lag = p->high_watermark - log_end_offset(p->log);
    out->offset_lag = MAX(lag, 0);
    out->is_future_key = false;
}

/* The partitions of ts this node holds, all of them or those named (want NULL: all). */
static void fill_topic(struct request *req, const struct topic_state *ts, const int32_t *want,
                       int32_t n_want, topic_out *out)
{
    describe_log_dirs_response_results_topics_init(out);
    out->name = slice_from_cstr(ts->name);
    int32_t cap = want ? n_want : ts->partition_count;
    out->partitions = REQ_ALLOC(req, part_out, MAX(cap, 1));
    out->partitions_count = 0;
    for (int32_t i = 0; i < cap; i++) {
        int32_t index = want ? want[i] : i;
        if (index < 0 || index >= ts->partition_count || !ts->partitions[index])
            continue; /* not here: Kafka leaves it out */
        fill_partition(ts->partitions[index], &out->partitions[out->partitions_count++]);
    }
}

void handle_describe_log_dirs(struct request *req)
{
    struct server *s = req->srv;
    struct describe_log_dirs_request in;
    if (describe_log_dirs_request_decode(&req->body, req->hdr.api_version, &req->arena, &in) != 0) {
        request_malformed(req);
        return;
    }
    struct describe_log_dirs_response resp;
    describe_log_dirs_response_init(&resp);
    struct describe_log_dirs_response_results *dir =
        REQ_ALLOC(req, struct describe_log_dirs_response_results, 1);
    describe_log_dirs_response_results_init(dir);
    dir->log_dir = slice_from_cstr(s->log_dir);
    struct statvfs fs;
    if (statvfs(s->log_dir, &fs) == 0) {
        dir->total_bytes = (int64_t)fs.f_blocks * (int64_t)fs.f_frsize;
        dir->usable_bytes = (int64_t)fs.f_bavail * (int64_t)fs.f_frsize;
    }
    size_t n = in.topics_count < 0 ? s->topics.count : (size_t)in.topics_count;
    dir->topics = REQ_ALLOC(req, topic_out, MAX(n, 1));
    dir->topics_count = 0;
    if (in.topics_count < 0) {
        size_t it = 0;
        struct slice k;
        void *v;
        while (hmap_next(&s->topics, &it, &k, &v))
            fill_topic(req, v, NULL, 0, &dir->topics[dir->topics_count++]);
    } else {
        for (int32_t i = 0; i < in.topics_count; i++) {
            const struct topic_state *ts = server_topic(s, in.topics[i].topic);
            if (ts)
                fill_topic(req, ts, in.topics[i].partitions, MAX(in.topics[i].partitions_count, 0),
                           &dir->topics[dir->topics_count++]);
        }
    }
    resp.results = dir;
    resp.results_count = 1;
    REQUEST_RESPOND(req, describe_log_dirs_response, &resp);
}
