"""Differential tests of the transactional APIs' error paths (issue #17): the same
requests to Kafka 4.4 and to Samsa, answers compared. Transaction version 1 (the
client's AddPartitionsToTxn up to v3, EndTxn v4) and 2 (EndTxn v5, which bumps the
epoch, and AddPartitionsToTxn v5 as a partition's leader sends it); producer ids, which
each broker hands out from its own blocks, are not compared."""
import pytest

import kclient

INVALID_TRANSACTION_TIMEOUT = 50


def _coordinators_ready(pair, txn_id):
    """FindCoordinator for a transactional id creates __transaction_state on both (Kafka
    and Samsa alike); wait until both name a coordinator and it has loaded."""
    v = pair.version("FindCoordinator", hi=3)
    for p in pair.peers:
        kclient.wait_until(
            lambda: p.call("FindCoordinator", v, {"Key": txn_id, "KeyType": 1})["ErrorCode"] == 0,
            60, interval=0.2, what="%s: transaction coordinator" % p.name)
    iv = pair.version("InitProducerId")
    for p in pair.peers:  # COORDINATOR_LOAD_IN_PROGRESS (14) / NOT_COORDINATOR (16) a while
        kclient.wait_until(
            lambda: p.call("InitProducerId", iv, {"TransactionalId": "warm-up-" + txn_id,
                                                  "TransactionTimeoutMs": 60000,
                                                  "ProducerId": -1, "ProducerEpoch": -1}
                           )["ErrorCode"] not in (14, 15, 16, 51),
            60, interval=0.2, what="%s: transaction coordinator loaded" % p.name)


def _init(pair, txn_id, timeout_ms=60000):
    v = pair.version("InitProducerId")
    req = {"TransactionalId": txn_id, "TransactionTimeoutMs": timeout_ms,
           "ProducerId": -1, "ProducerEpoch": -1}
    return v, pair.both("InitProducerId", v, req)


def test_find_coordinator_for_a_transactional_id(pair):
    _coordinators_ready(pair, pair.name("find"))
    v = pair.version("FindCoordinator")
    req = {"KeyType": 1, "CoordinatorKeys": ["a", "b"]} if v >= 4 else {"KeyType": 1, "Key": "a"}
    pair.same("transaction coordinator", "FindCoordinator", v, req)


def test_init_producer_id_timeouts(pair):
    txn = pair.name("timeouts")
    _coordinators_ready(pair, txn)
    for timeout in (0, -1, 900001):
        v, (k, s) = _init(pair, txn, timeout)
        assert k["ErrorCode"] == INVALID_TRANSACTION_TIMEOUT, k
        pair.compare("InitProducerId timeout %d (v%d)" % (timeout, v), k, s)
    v, (k, s) = _init(pair, txn)
    assert k["ErrorCode"] == 0, k
    pair.compare("InitProducerId (v%d)" % v, k, s, ignore=("ProducerId",))


def test_unknown_transactional_id(pair):
    txn = pair.name("unknown")
    _coordinators_ready(pair, txn)
    t = pair.create_topic(pair.name("tx"))
    av = pair.version("AddPartitionsToTxn", hi=3)
    pair.same("AddPartitionsToTxn, unknown id", "AddPartitionsToTxn", av,
              {"TransactionalId": txn, "ProducerId": 12345, "ProducerEpoch": 0,
               "Topics": [{"Name": t, "Partitions": [0]}]})
    ev = pair.version("EndTxn")
    pair.same("EndTxn, unknown id", "EndTxn", ev,
              {"TransactionalId": txn, "ProducerId": 12345, "ProducerEpoch": 0,
               "Committed": True})
    ov = pair.version("AddOffsetsToTxn")
    pair.same("AddOffsetsToTxn, unknown id", "AddOffsetsToTxn", ov,
              {"TransactionalId": txn, "ProducerId": 12345, "ProducerEpoch": 0,
               "GroupId": "g"})
    dv = pair.version("DescribeTransactions")
    pair.same("DescribeTransactions, unknown id", "DescribeTransactions", dv,
              {"TransactionalIds": [txn]})


@pytest.mark.parametrize("end_version", [4, 5])
def test_producer_checks_and_empty_transaction(pair, end_version):
    txn = pair.name("checks-v%d" % end_version)
    _coordinators_ready(pair, txn)
    t = pair.create_topic(pair.name("tx"))
    _, (k, s) = _init(pair, txn)
    assert k["ErrorCode"] == 0 and s["ErrorCode"] == 0, (k, s)
    av = pair.version("AddPartitionsToTxn", hi=3)
    ev = pair.version("EndTxn", lo=end_version, hi=end_version)
    for peer_answer, peer in ((k, pair.k), (s, pair.s)):
        pid, epoch = peer_answer["ProducerId"], peer_answer["ProducerEpoch"]
        peer.ids = (pid, epoch)

    def both_with_own_ids(api, version, make):
        return tuple(pair.call(p, api, version, make(*p.ids)) for p in pair.peers)

    # An epoch that is not the producer's: fenced.
    k, s = both_with_own_ids("AddPartitionsToTxn", av, lambda pid, e: {
        "TransactionalId": txn, "ProducerId": pid, "ProducerEpoch": e + 1,
        "Topics": [{"Name": t, "Partitions": [0]}]})
    pair.compare("AddPartitionsToTxn, wrong epoch (v%d)" % av, k, s)
    # Another producer id: a mapping error.
    k, s = both_with_own_ids("AddPartitionsToTxn", av, lambda pid, e: {
        "TransactionalId": txn, "ProducerId": pid + 1, "ProducerEpoch": e,
        "Topics": [{"Name": t, "Partitions": [0]}]})
    pair.compare("AddPartitionsToTxn, wrong producer id (v%d)" % av, k, s)
    # A topic that does not exist: that partition, and the others not attempted. (Kafka
    # lists the topics in its map's order, which varies with their names.)
    k, s = both_with_own_ids("AddPartitionsToTxn", av, lambda pid, e: {
        "TransactionalId": txn, "ProducerId": pid, "ProducerEpoch": e,
        "Topics": [{"Name": t, "Partitions": [0]}, {"Name": "no-such-topic", "Partitions": [0]}]})
    for answer in (k, s):
        answer["Results"].sort(key=lambda r: r["Name"])
    pair.compare("AddPartitionsToTxn, unknown topic (v%d)" % av, k, s)
    # Ending a transaction that has no partitions.
    k, s = both_with_own_ids("EndTxn", ev, lambda pid, e: {
        "TransactionalId": txn, "ProducerId": pid, "ProducerEpoch": e, "Committed": True})
    pair.compare("EndTxn of an empty transaction (v%d)" % ev, k, s, ignore=("ProducerId",))
    # A real transaction: added, ended, and a retry of the same end answered alike.
    k, s = both_with_own_ids("AddPartitionsToTxn", av, lambda pid, e: {
        "TransactionalId": txn, "ProducerId": pid, "ProducerEpoch": e,
        "Topics": [{"Name": t, "Partitions": [0]}]})
    pair.compare("AddPartitionsToTxn (v%d)" % av, k, s)
    k, s = both_with_own_ids("EndTxn", ev, lambda pid, e: {
        "TransactionalId": txn, "ProducerId": pid, "ProducerEpoch": e, "Committed": False})
    pair.compare("EndTxn abort (v%d)" % ev, k, s, ignore=("ProducerId",))
    dv = pair.version("DescribeTransactions")
    for p in pair.peers:  # the abort completes (markers) shortly after the answer
        kclient.wait_until(
            lambda: p.call("DescribeTransactions", dv, {"TransactionalIds": [txn]})[
                "TransactionStates"][0]["TransactionState"] == "CompleteAbort",
            30, interval=0.1, what="%s: CompleteAbort" % p.name)
    k, s = both_with_own_ids("EndTxn", ev, lambda pid, e: {
        "TransactionalId": txn, "ProducerId": pid, "ProducerEpoch": e, "Committed": False})
    pair.compare("EndTxn abort again (v%d)" % ev, k, s, ignore=("ProducerId",))
    k, s = both_with_own_ids("EndTxn", ev, lambda pid, e: {
        "TransactionalId": txn, "ProducerId": pid, "ProducerEpoch": e, "Committed": True})
    pair.compare("EndTxn commit after an abort (v%d)" % ev, k, s, ignore=("ProducerId",))


def test_list_transactions_unknown_state(pair):
    _coordinators_ready(pair, pair.name("list"))
    v = pair.version("ListTransactions")
    k, s = pair.both("ListTransactions", v, {"StateFilters": ["NoSuchState"],
                                             "ProducerIdFilters": []})
    pair.compare("ListTransactions, unknown state (v%d)" % v, k, s)


def test_transaction_version_2(pair):
    """EndTxn v5 bumps the epoch at every end and answers the next one; a retry comes
    with the epoch before the bump; an abort may end no transaction (a new epoch); a
    partition's leader adds partitions with AddPartitionsToTxn v5 (VerifyOnly false)."""
    txn = pair.name("tv2")
    _coordinators_ready(pair, txn)
    t = pair.create_topic(pair.name("tx2"))
    _, (k, s) = _init(pair, txn)
    assert k["ErrorCode"] == 0 and s["ErrorCode"] == 0, (k, s)
    for peer_answer, peer in ((k, pair.k), (s, pair.s)):
        peer.ids = (peer_answer["ProducerId"], peer_answer["ProducerEpoch"])
    ev = pair.version("EndTxn", lo=5)
    av = pair.version("AddPartitionsToTxn", lo=5)
    dv = pair.version("DescribeTransactions")

    def both(api, version, make):
        return tuple(pair.call(p, api, version, make(*p.ids)) for p in pair.peers)

    def end(what, epoch_delta, commit):
        k, s = both("EndTxn", ev, lambda pid, e: {
            "TransactionalId": txn, "ProducerId": pid, "ProducerEpoch": e + epoch_delta,
            "Committed": commit})
        pair.compare("%s (EndTxn v%d)" % (what, ev), k, s, ignore=("ProducerId",))
        return k, s

    def settled(state):
        for p in pair.peers:
            kclient.wait_until(
                lambda: p.call("DescribeTransactions", dv, {"TransactionalIds": [txn]})[
                    "TransactionStates"][0]["TransactionState"] == state,
                30, interval=0.1, what="%s: %s" % (p.name, state))

    end("commit of nothing", 0, True)
    k, _ = end("abort of nothing: a new epoch", 0, False)
    assert k["ErrorCode"] == 0 and k["ProducerEpoch"] == 1, k
    settled("CompleteAbort")
    end("the abort retried", 0, False)
    end("a commit with the epoch before the bump", 0, True)
    end("an epoch from the future", 5, False)
    for p in pair.peers:
        p.ids = (p.ids[0], p.ids[1] + 1)
    k, s = both("AddPartitionsToTxn", av, lambda pid, e: {"Transactions": [{
        "TransactionalId": txn, "ProducerId": pid, "ProducerEpoch": e, "VerifyOnly": False,
        "Topics": [{"Name": t, "Partitions": [0, 1]}]}]})
    for answer in (k, s):  # in no order that matters (Kafka lists the unknown first)
        for r in answer["ResultsByTransaction"][0]["TopicResults"]:
            r["ResultsByPartition"].sort(key=lambda p: p["PartitionIndex"])
    pair.compare("a leader adds a partition that does not exist (AddPartitionsToTxn v%d)" % av,
                 k, s)
    k, s = both("AddPartitionsToTxn", av, lambda pid, e: {"Transactions": [{
        "TransactionalId": txn, "ProducerId": pid, "ProducerEpoch": e - 1, "VerifyOnly": False,
        "Topics": [{"Name": t, "Partitions": [0]}]}]})
    pair.compare("a leader adds for an old epoch (AddPartitionsToTxn v%d)" % av, k, s)
    k, s = both("AddPartitionsToTxn", av, lambda pid, e: {"Transactions": [{
        "TransactionalId": txn, "ProducerId": pid, "ProducerEpoch": e, "VerifyOnly": False,
        "Topics": [{"Name": t, "Partitions": [0]}]}]})
    pair.compare("a leader adds a partition (AddPartitionsToTxn v%d)" % av, k, s)
    k, s = both("DescribeTransactions", dv, lambda pid, e: {"TransactionalIds": [txn]})
    pair.compare("Ongoing after the add", k, s,
                 ignore=("TransactionStates[].ProducerId", "TransactionStates[].TransactionStartTimeMs"))
    k, _ = end("commit", 0, True)
    assert k["ErrorCode"] == 0 and k["ProducerEpoch"] == 2, k
    settled("CompleteCommit")
    end("the commit retried", 0, True)
    end("an abort with the epoch before the bump", 0, False)
