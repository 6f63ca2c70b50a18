/* The partitions OffsetCommit and OffsetDelete refuse themselves, and Kafka's layout
 * of their answers around them: see refusals.h. */
#include "server/handlers/refusals.h"

/* The hmap holds pointers: store index + 1 so that 0 (NULL) means absent. */
static size_t index_get(const struct hmap *m, struct slice name)
{
    return (size_t)(uintptr_t)hmap_get(m, name);
}

static void index_put(struct hmap *m, struct slice name, size_t i)
{
    hmap_put(m, name, (void *)(uintptr_t)(i + 1));
}

void refusals_init(struct refusals *r, struct arena *a, size_t max_topics)
{
    r->topics = arena_alloc(a, (max_topics ? max_topics : 1) * sizeof(*r->topics));
    r->n_topics = 0;
    hmap_init(&r->by_name);
}

void refusals_count(struct refusals *r, struct slice topic, size_t n_partitions)
{
    size_t i = index_get(&r->by_name, topic);
    if (i == 0) {
        r->topics[r->n_topics] = (struct refused_topic){topic, NULL, 0, 0};
        index_put(&r->by_name, topic, r->n_topics);
        i = ++r->n_topics;
    }
    r->topics[i - 1].cap += n_partitions;
}

void refusals_alloc(struct refusals *r, struct arena *a)
{
    for (size_t i = 0; i < r->n_topics; i++)
        r->topics[i].partitions =
            arena_alloc(a, (r->topics[i].cap ? r->topics[i].cap : 1) * sizeof(int32_t));
}

void refusals_add(struct refusals *r, struct slice topic, int32_t partition)
{
    size_t i = index_get(&r->by_name, topic);
    ASSERT(i > 0);
    struct refused_topic *t = &r->topics[i - 1];
    ASSERT(t->n < t->cap);
    t->partitions[t->n++] = partition;
}

void refusals_free(struct refusals *r)
{
    hmap_free(&r->by_name);
}

size_t refusals_merge(const struct refusals *r, struct arena *a,
                      const struct grp_commit_resp_topic *coord, size_t n_coord,
                      const struct grp_commit_resp_topic **out)
{
    if (r->n_topics == 0) {
        *out = coord;
        return n_coord;
    }
    size_t max = r->n_topics + n_coord;
    struct grp_commit_resp_topic *res = arena_alloc(a, max * sizeof(*res));
    size_t *count = arena_alloc(a, max * sizeof(*count));
    size_t *where = arena_alloc(a, (n_coord ? n_coord : 1) * sizeof(*where));
    struct hmap by_name;
    hmap_init(&by_name);
    size_t n = 0;
    for (size_t i = 0; i < r->n_topics; i++) {
        res[n].name = r->topics[i].name;
        count[n] = r->topics[i].n;
        index_put(&by_name, res[n].name, n);
        n++;
    }
    for (size_t t = 0; t < n_coord; t++) {
        size_t o = index_get(&by_name, coord[t].name);
        if (o == 0) {
            res[n].name = coord[t].name;
            count[n] = 0;
            index_put(&by_name, res[n].name, n);
            o = ++n;
        }
        where[t] = o - 1;
        count[where[t]] += coord[t].n_partitions;
    }
    hmap_free(&by_name);
    struct grp_commit_resp_partition **parts = arena_alloc(a, n * sizeof(*parts));
    for (size_t o = 0; o < n; o++) {
        parts[o] = arena_alloc(a, (count[o] ? count[o] : 1) * sizeof(**parts));
        res[o].partitions = parts[o];
        res[o].n_partitions = 0;
    }
    for (size_t i = 0; i < r->n_topics; i++)
        for (size_t p = 0; p < r->topics[i].n; p++)
            parts[i][res[i].n_partitions++] = (struct grp_commit_resp_partition){
                r->topics[i].partitions[p], KERR_UNKNOWN_TOPIC_OR_PARTITION};
    for (size_t t = 0; t < n_coord; t++)
        for (size_t p = 0; p < coord[t].n_partitions; p++)
            parts[where[t]][res[where[t]].n_partitions++] = coord[t].partitions[p];
    for (size_t o = 0; o < n; o++)
        ASSERT(res[o].n_partitions == count[o]);
    *out = res;
    return n;
}
