/* Preferred leaders (internal.h, "leader balance"): after a broker comes back from a
 * failure or a restart its partitions are led by other replicas, and nothing moves them
 * back by itself. As Kafka 4's controller does (auto.leader.rebalance.enable), the
 * active controller looks every leader.imbalance.check.interval.seconds for partitions
 * whose preferred replica (their first) is unfenced and in sync but does not lead, and
 * elects it. (Kafka 4 dropped leader.imbalance.per.broker.percentage: every such
 * partition moves.) ElectLeaders does the same on request. */
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

static void elected(void *arg, const struct cluster_result *res)
{
    (void)arg;
    if (res->err != CLUSTER_OK && res->err != CLUSTER_ERR_ELECTION_NOT_NEEDED)
        say_info_ratelimited("server", "preferred leader election: %s",
                             res->why ? res->why : "refused");
}

static void balance(struct server *s)
{
    int moved = 0;
    for (size_t i = 0; i < cluster_topic_count(s->cluster); i++) {
        const struct mtopic *t = cluster_topic_at(s->cluster, i);
        for (int32_t k = 0; k < t->partition_count; k++) {
            if (!server_preferred_leader_wanted(s, &t->partitions[k]))
                continue;
            cluster_elect_leader(s->cluster, slice_from_cstr(t->name), k, CLUSTER_ELECT_PREFERRED,
                                 elected, NULL);
            moved++;
        }
    }
    if (moved)
        say_info("server", "leader balance: electing the preferred replica of %d partitions",
                 moved);
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
