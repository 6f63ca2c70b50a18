/* Preferred leaders (internal.h, "leader balance"): after a broker comes back from a
 * failure or a restart its partitions are led by other replicas, and nothing moves them
 * back by itself. As Kafka's controller does (auto.leader.rebalance.enable), the active
 * controller looks every leader.imbalance.check.interval.seconds at each broker's share
 * of partitions it should lead (it is their first replica) but does not; above
 * leader.imbalance.per.broker.percentage it elects the preferred replica for each of
 * them that is unfenced and in sync. ElectLeaders does the same on request. */
#include "server/internal.h"

bool server_preferred_leader_wanted(struct server *s, const struct mpartition *mp)
{
    if (mp->replica_count == 0 || mp->leader == mp->replicas[0])
        return false;
    const struct mbroker *b = cluster_broker_find(s->cluster, mp->replicas[0]);
    if (!b || b->fenced)
        return false;
    for (int32_t i = 0; i < mp->isr_count; i++)
        if (mp->isr[i] == mp->replicas[0])
            return true;
    return false;
}

/* The share (percent) of the partitions broker id should lead that it does not. */
static int64_t imbalance_percent(struct server *s, int32_t id)
{
    int64_t preferred = 0, elsewhere = 0;
    for (size_t i = 0; i < cluster_topic_count(s->cluster); i++) {
        const struct mtopic *t = cluster_topic_at(s->cluster, i);
        for (int32_t k = 0; k < t->partition_count; k++) {
            const struct mpartition *mp = &t->partitions[k];
            if (mp->replica_count == 0 || mp->replicas[0] != id)
                continue;
            preferred++;
            elsewhere += mp->leader != id;
        }
    }
    return preferred ? elsewhere * 100 / preferred : 0;
}

static void elected(void *arg, const struct cluster_result *res)
{
    (void)arg;
    if (res->err != CLUSTER_OK && res->err != CLUSTER_ERR_ELECTION_NOT_NEEDED)
        say_info_ratelimited("server", "preferred leader election: %s",
                             res->why ? res->why : "refused");
}

static void balance(struct server *s)
{
    for (size_t b = 0; b < cluster_broker_count(s->cluster); b++) {
        const struct mbroker *br = cluster_broker_at(s->cluster, b);
        if (br->fenced ||
            imbalance_percent(s, br->node_id) <= s->cfg->leader_imbalance_per_broker_percentage)
            continue;
        int moved = 0;
        for (size_t i = 0; i < cluster_topic_count(s->cluster); i++) {
            const struct mtopic *t = cluster_topic_at(s->cluster, i);
            for (int32_t k = 0; k < t->partition_count; k++) {
                const struct mpartition *mp = &t->partitions[k];
                if (mp->replicas[0] != br->node_id || !server_preferred_leader_wanted(s, mp))
                    continue;
                cluster_elect_leader(s->cluster, slice_from_cstr(t->name), k,
                                     CLUSTER_ELECT_PREFERRED, elected, NULL);
                moved++;
            }
        }
        if (moved)
            say_info("server",
                     "leader balance: broker %d leads too few of its preferred "
                     "partitions; electing it for %d",
                     br->node_id, moved);
    }
}

static void on_balance_timer(struct net_loop *loop, void *arg)
{
    struct server *s = arg;
    if (!s->stopping && cluster_controller_id(s->cluster) == s->cfg->node_id)
        balance(s);
    s->balance_timer =
        net_timer_add(loop, s->cfg->leader_imbalance_check_interval_ms, on_balance_timer, s);
}

void server_leader_balance_start(struct server *s)
{
    if (s->cfg->auto_leader_rebalance && s->quorum_link)
        s->balance_timer =
            net_timer_add(s->loop, s->cfg->leader_imbalance_check_interval_ms, on_balance_timer, s);
}

void server_leader_balance_stop(struct server *s)
{
    if (s->balance_timer)
        net_timer_cancel(s->loop, s->balance_timer);
    s->balance_timer = 0;
}
