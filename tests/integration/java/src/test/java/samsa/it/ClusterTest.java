package samsa.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.Callable;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Predicate;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterPartitionReassignmentsOptions;
import org.apache.kafka.clients.admin.CreateTopicsOptions;
import org.apache.kafka.clients.admin.DescribeConsumerGroupsOptions;
import org.apache.kafka.clients.admin.DescribeMetadataQuorumOptions;
import org.apache.kafka.clients.admin.NewPartitionReassignment;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.PartitionReassignment;
import org.apache.kafka.clients.admin.ProducerState;
import org.apache.kafka.clients.admin.QuorumInfo;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.CloseOptions;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.errors.InvalidReplicaAssignmentException;
import org.apache.kafka.common.errors.InvalidReplicationFactorException;
import org.apache.kafka.common.errors.NoReassignmentInProgressException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.extension.TestWatcher;

/**
 * The Java client against a three-node cluster started with {@code samsa cluster up}:
 * each test gets its own cluster, and the clients bootstrap with one node (one that is not
 * the active controller), so the Admin client has to find the controller itself and the
 * producer and consumer the leader of each partition.
 */
class ClusterTest {
    private static final Duration CALL = Duration.ofSeconds(30);
    private static final int NODES = 3;
    private static final int PARTITIONS = 12;

    private SamsaCluster cluster;
    private final List<AutoCloseable> clients = new ArrayList<>();

    // The cluster is stopped (and its dir removed) by this watcher, which JUnit calls after
    // the @AfterEach methods, so that a failed test can still show the nodes' logs.
    @RegisterExtension
    final TestWatcher stopCluster = new TestWatcher() {
        @Override
        public void testSuccessful(ExtensionContext context) {
            closeCluster();
        }

        @Override
        public void testAborted(ExtensionContext context, Throwable cause) {
            closeCluster();
        }

        @Override
        public void testFailed(ExtensionContext context, Throwable cause) {
            if (cluster != null) {
                for (int n = 1; n <= NODES; n++) {
                    System.err.println("---- node " + n + " log tail (" + context.getDisplayName() + ") ----\n"
                            + cluster.logTail(n, 30));
                }
            }
            closeCluster();
        }
    };

    @BeforeEach
    void up() throws Exception {
        cluster = SamsaCluster.up(NODES);
    }

    @AfterEach
    void closeClients() {
        for (AutoCloseable c : clients) {
            try {
                if (c instanceof KafkaConsumer<?, ?> kc) {
                    kc.close(CloseOptions.timeout(Duration.ofSeconds(5)));
                } else if (c instanceof KafkaProducer<?, ?> kp) {
                    kp.close(Duration.ofSeconds(5));
                } else if (c instanceof Admin a) {
                    a.close(Duration.ofSeconds(5));
                } else {
                    c.close();
                }
            } catch (Exception e) {
                System.err.println("closing " + c + ": " + e);
            }
        }
        clients.clear();
    }

    private <T extends AutoCloseable> T track(T client) {
        clients.add(client);
        return client;
    }

    private Admin admin(String bootstrap) {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        return track(Admin.create(p));
    }

    /** A producer with the client's defaults: idempotent, acks=all. */
    private KafkaProducer<String, String> producer(String bootstrap) {
        Map<String, Object> p = new HashMap<>();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "30000");
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "40000");
        return track(new KafkaProducer<>(p, new StringSerializer(), new StringSerializer()));
    }

    private KafkaConsumer<String, String> consumer(String bootstrap, String group) {
        Map<String, Object> p = new HashMap<>();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        // The classic group protocol: Samsa does not serve KIP-848's ConsumerGroupHeartbeat.
        p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        p.put(ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        return track(new KafkaConsumer<>(p, new StringDeserializer(), new StringDeserializer()));
    }

    /** A transactional producer (the client's transaction version 2 against these
     *  brokers), initialised. */
    private KafkaProducer<String, String> transactionalProducer(String bootstrap, String transactionalId) {
        Map<String, Object> p = new HashMap<>();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, transactionalId);
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "60000");
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "60000");
        KafkaProducer<String, String> producer =
                track(new KafkaProducer<>(p, new StringSerializer(), new StringSerializer()));
        producer.initTransactions();
        return producer;
    }

    /** A read_committed consumer assigned every partition of topic from the start. */
    private KafkaConsumer<String, String> committedReader(String bootstrap, String topic, int partitions) {
        Map<String, Object> p = new HashMap<>();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        KafkaConsumer<String, String> c = track(new KafkaConsumer<>(p, new StringDeserializer(), new StringDeserializer()));
        c.assign(IntStream.range(0, partitions).mapToObj(i -> new TopicPartition(topic, i)).toList());
        return c;
    }

    /** A topic of three replicas each (min.insync.replicas 2), once every partition has a
     *  leader and all three in sync. */
    private static void createReplicated(Admin admin, String topic, int parts) throws Exception {
        get(admin.createTopics(List.of(new NewTopic(topic, parts, (short) 3)
                .configs(Map.of("min.insync.replicas", "2")))).all());
        describeUntil(admin, topic, "every partition with a leader and three in-sync replicas",
                d -> d.partitions().size() == parts && d.partitions().stream()
                        .allMatch(p -> p.leader() != null && p.isr().size() == 3));
    }

    private static <T> T get(KafkaFuture<T> f) throws Exception {
        return f.get(CALL.toMillis(), TimeUnit.MILLISECONDS);
    }

    /** A node other than the active controller: bootstrapping with it makes the Admin
     *  client find the controller through Metadata. */
    private int notController() {
        return cluster.initialController() == 1 ? 2 : 1;
    }

    /**
     * Describes the topics (name to partition count) once the node asked knows them all
     * with every partition: CreateTopics returns once the controller committed a topic, and
     * the other nodes apply it a little later.
     */
    private static Map<String, TopicDescription> describe(Admin admin, Map<String, Integer> partitions)
            throws Exception {
        long deadline = System.nanoTime() + CALL.toNanos();
        while (true) {
            Object why;
            try {
                Map<String, TopicDescription> d = get(admin.describeTopics(partitions.keySet()).allTopicNames());
                if (partitions.entrySet().stream().allMatch(e -> d.get(e.getKey()).partitions().size() == e.getValue())) {
                    return d;
                }
                why = d;
            } catch (ExecutionException e) {
                if (!(e.getCause() instanceof UnknownTopicOrPartitionException)) {
                    throw e;
                }
                why = e.getCause();
            }
            assertTrue(System.nanoTime() < deadline, "topics " + partitions + " not described within " + CALL + ": " + why);
            Thread.sleep(100);
        }
    }

    private static Map<Integer, Integer> leaders(TopicDescription d) {
        Map<Integer, Integer> m = new TreeMap<>();
        for (TopicPartitionInfo p : d.partitions()) {
            m.put(p.partition(), p.leader() == null ? -1 : p.leader().id());
        }
        return m;
    }

    /**
     * Sends {@code n} records keyed k0..k(n-1), values {@code tag}-i, and waits for all;
     * returns how many landed on each partition.
     */
    private static Map<Integer, Integer> produceKeyed(KafkaProducer<String, String> producer, String topic, int n,
            String tag) throws Exception {
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            sent.add(producer.send(new ProducerRecord<>(topic, "k" + i, tag + "-" + i)));
        }
        producer.flush();
        Map<Integer, Integer> perPartition = new TreeMap<>();
        for (Future<RecordMetadata> f : sent) {
            perPartition.merge(f.get(0, TimeUnit.SECONDS).partition(), 1, Integer::sum);
        }
        return perPartition;
    }

    /** Polls until {@code want} records came, failing on a duplicate or after 60 s. */
    private static Map<String, ConsumerRecord<String, String>> consumeExactly(KafkaConsumer<String, String> consumer,
            int want) {
        Map<String, ConsumerRecord<String, String>> seen = new HashMap<>();
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (seen.size() < want) {
            assertTrue(System.nanoTime() < deadline, "consumed only " + seen.size() + " of " + want);
            for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                ConsumerRecord<String, String> before = seen.put(r.value(), r);
                assertNull(before, "record " + r.value() + " consumed twice: at " + r.partition() + "/" + r.offset()
                        + (before == null ? "" : " and " + before.partition() + "/" + before.offset()));
            }
        }
        // Nothing more than what was produced arrives.
        for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
            fail("unexpected record " + r.value() + " at " + r.partition() + "/" + r.offset());
        }
        return seen;
    }

    /**
     * A 12-partition topic made through one node gets leaders on all three; an idempotent
     * producer writes keyed records to all twelve, and one consumer of a group reads each
     * exactly once and commits where it ended.
     */
    @Test
    @Timeout(90)
    void produceAndConsumeAcrossBrokers() throws Exception {
        String boot = cluster.bootstrap(notController());
        String topic = "cluster-spread";
        Admin admin = admin(boot);
        get(admin.createTopics(List.of(new NewTopic(topic, PARTITIONS, (short) 1))).all());
        Map<Integer, Integer> leaders = leaders(describe(admin, Map.of(topic, PARTITIONS)).get(topic));
        assertEquals(PARTITIONS, leaders.size(), "partitions of " + topic + ": " + leaders);
        assertEquals(Set.of(1, 2, 3), new HashSet<>(leaders.values()), "leaders of " + topic + ": " + leaders);

        int n = 3000;
        Map<Integer, Integer> perPartition = produceKeyed(producer(boot), topic, n, "v");
        assertEquals(PARTITIONS, perPartition.size(), "partitions that got records: " + perPartition);

        KafkaConsumer<String, String> consumer = consumer(boot, "cluster-spread-group");
        consumer.subscribe(List.of(topic));
        Map<String, ConsumerRecord<String, String>> seen = consumeExactly(consumer, n);
        for (int i = 0; i < n; i++) {
            ConsumerRecord<String, String> r = seen.get("v-" + i);
            assertTrue(r != null, "record v-" + i + " not consumed");
            assertEquals("k" + i, r.key(), "key of v-" + i);
        }
        consumer.commitSync(Duration.ofSeconds(30));

        Map<TopicPartition, OffsetAndMetadata> committed = get(
                admin.listConsumerGroupOffsets("cluster-spread-group").partitionsToOffsetAndMetadata());
        for (int p = 0; p < PARTITIONS; p++) {
            OffsetAndMetadata o = committed.get(new TopicPartition(topic, p));
            assertTrue(o != null, "no committed offset for partition " + p + ": " + committed);
            assertEquals((long) perPartition.get(p), o.offset(), "committed offset of partition " + p);
        }
    }

    /**
     * Transactions (version 2, the brokers' default) across three brokers: a transactional
     * producer writes to partitions led by every broker and commits consumer offsets with
     * sendOffsetsToTransaction, sending no AddPartitionsToTxn nor AddOffsetsToTxn; the
     * partitions' leaders add them to the transaction with its coordinator, wherever that
     * is (AddPartitionsToTxn v5 between brokers), and the coordinator writes the markers
     * to every leader (WriteTxnMarkers v2). A read_committed consumer then sees the two
     * committed transactions exactly, and not the aborted one; the group's offset is the
     * last committed one; the partitions saw the epoch bumped at each end.
     */
    @Test
    @Timeout(120)
    void transactionsAcrossBrokers() throws Exception {
        String boot = cluster.bootstrap(notController());
        String topic = "cluster-tx", in = "cluster-tx-in", group = "cluster-tx-group";
        Admin admin = admin(boot);
        get(admin.createTopics(List.of(new NewTopic(topic, PARTITIONS, (short) 1), new NewTopic(in, 1, (short) 1)))
                .all());
        Map<Integer, Integer> leaders = leaders(describe(admin, Map.of(topic, PARTITIONS, in, 1)).get(topic));
        assertEquals(Set.of(1, 2, 3), new HashSet<>(leaders.values()), "leaders of " + topic + ": " + leaders);

        KafkaProducer<String, String> p = transactionalProducer(boot, "cluster-tx-app");
        KafkaConsumer<String, String> c = consumer(boot, group);
        TopicPartition inTp = new TopicPartition(in, 0);
        c.assign(List.of(inTp));
        String[] outcome = {"commit", "abort", "commit"};
        for (int t = 0; t < outcome.length; t++) {
            p.beginTransaction();
            for (int part = 0; part < PARTITIONS; part++) {
                p.send(new ProducerRecord<>(topic, part, null, outcome[t] + "-" + t + "-" + part));
            }
            p.sendOffsetsToTransaction(Map.of(inTp, new OffsetAndMetadata(10L * (t + 1))), c.groupMetadata());
            if (outcome[t].equals("commit")) {
                p.commitTransaction();
            } else {
                p.flush();
                p.abortTransaction();
            }
        }

        KafkaConsumer<String, String> reader = committedReader(boot, topic, PARTITIONS);
        Map<String, ConsumerRecord<String, String>> seen = consumeExactly(reader, 2 * PARTITIONS);
        for (int part = 0; part < PARTITIONS; part++) {
            assertTrue(seen.containsKey("commit-0-" + part) && seen.containsKey("commit-2-" + part),
                    "committed records of partition " + part + ": " + seen.keySet());
        }
        OffsetAndMetadata committed = get(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata())
                .get(inTp);
        assertEquals(30L, committed.offset(), "the group's offset");
        TopicPartition first = new TopicPartition(topic, 0);
        ProducerState ps = get(admin.describeProducers(List.of(first)).all()).get(first).activeProducers().get(0);
        assertEquals(3, ps.producerEpoch(), "the epoch after three ends (transaction version 2)");
    }

    /**
     * Transaction version 2 across the loss of the transaction coordinator: six partitions
     * with three replicas, a transactional producer committing one record per partition
     * per transaction, one after another; after some commits the broker that coordinates
     * its transactional id is killed with SIGKILL, with a transaction's records written and
     * its commit not yet asked for. Another broker takes over __transaction_state's
     * partition, loads the id and finishes or aborts what was open; the producer goes on by
     * itself (a commit that fails is aborted and done again, as an application would). A
     * read_committed consumer then sees each committed transaction's records exactly once,
     * all of a transaction or none of it, and nothing of the aborted ones.
     */
    @Test
    @Timeout(150)
    void transactionsSurviveTheCoordinatorsLoss() throws Exception {
        final String topic = "cluster-tx-failover";
        final int parts = 6;
        Admin admin = admin(cluster.bootstrapAll());
        createReplicated(admin, topic, parts);
        KafkaProducer<String, String> p = transactionalProducer(cluster.bootstrapAll(), "cluster-tx-failover-app");

        Set<Integer> committed = new TreeSet<>();
        int victim = -1;
        long deadline = System.nanoTime() + Duration.ofSeconds(90).toNanos();
        for (int t = 0; committed.size() < 60; t++) {
            assertTrue(System.nanoTime() < deadline, "only " + committed.size() + " transactions committed");
            try {
                p.beginTransaction();
                for (int part = 0; part < parts; part++) {
                    p.send(new ProducerRecord<>(topic, part, null, String.format("t%04d-p%d", t, part)));
                }
                if (committed.size() == 20 && victim < 0) { // with this transaction's records out
                    p.flush();
                    victim = get(admin.describeTransactions(List.of("cluster-tx-failover-app")).all())
                            .get("cluster-tx-failover-app").coordinatorId();
                    cluster.kill(victim);
                }
                p.commitTransaction();
                committed.add(t);
            } catch (org.apache.kafka.common.errors.ProducerFencedException
                    | org.apache.kafka.common.errors.OutOfOrderSequenceException
                    | org.apache.kafka.common.errors.AuthorizationException e) {
                throw e; // fatal: not what a failover may cause
            } catch (org.apache.kafka.common.KafkaException e) {
                System.err.println("transaction " + t + " failed (" + e + "); aborting it");
                p.abortTransaction();
            }
        }
        assertTrue(victim >= 1, "the coordinator was never killed");

        KafkaConsumer<String, String> reader = committedReader(cluster.bootstrapAll(), topic, parts);
        Map<String, ConsumerRecord<String, String>> seen = consumeExactly(reader, committed.size() * parts);
        for (int t : committed) {
            for (int part = 0; part < parts; part++) {
                String v = String.format("t%04d-p%d", t, part);
                assertTrue(seen.containsKey(v), "committed record " + v + " not read");
                assertEquals(part, seen.get(v).partition(), "partition of " + v);
            }
        }
        System.err.println("transactions across the coordinator's loss: node " + victim + " killed after 20 of "
                + committed.size() + " commits");
    }

    /**
     * DescribeMetadataQuorum lists three voters and a leader; once that leader (also a
     * broker) is killed, the other two elect another, CreateTopics through them succeeds
     * within bounded time, and a producer and a consumer group work on the partitions the
     * surviving brokers lead.
     */
    @Test
    @Timeout(120)
    void killedControllerIsReplaced() throws Exception {
        String topic = "cluster-before-kill";
        Admin admin = admin(cluster.bootstrap(notController()));
        get(admin.createTopics(List.of(new NewTopic(topic, PARTITIONS, (short) 1))).all());
        int before = 600;
        produceKeyed(producer(cluster.bootstrap(notController())), topic, before, "before");

        QuorumInfo quorum = get(admin.describeMetadataQuorum().quorumInfo());
        assertEquals(Set.of(1, 2, 3),
                quorum.voters().stream().map(QuorumInfo.ReplicaState::replicaId).collect(Collectors.toSet()),
                "voters: " + quorum);
        int killed = quorum.leaderId();
        assertTrue(killed >= 1 && killed <= NODES, "quorum leader " + killed);

        cluster.kill(killed);
        List<Integer> rest = IntStream.rangeClosed(1, NODES).filter(i -> i != killed).boxed().toList();
        String restBoot = rest.stream().map(cluster::bootstrap).collect(Collectors.joining(","));
        Admin restAdmin = admin(restBoot);

        // CreateTopics through the survivors, retried (a short timeout per try) until a new
        // controller commits it. A try that timed out may have been committed: the topic
        // then exists, which counts as success.
        String after = "cluster-after-kill";
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        Exception last = null;
        while (true) {
            assertTrue(System.nanoTime() < deadline, "CreateTopics did not succeed within 30 s of the kill: " + last);
            try {
                restAdmin.createTopics(List.of(new NewTopic(after, 6, (short) 1)),
                        new CreateTopicsOptions().timeoutMs(5000)).all().get(10, TimeUnit.SECONDS);
                break;
            } catch (ExecutionException e) {
                if (e.getCause() instanceof TopicExistsException) {
                    break;
                }
                last = e;
            } catch (java.util.concurrent.TimeoutException e) {
                last = e;
            }
            Thread.sleep(200);
        }

        QuorumInfo now = get(restAdmin.describeMetadataQuorum(new DescribeMetadataQuorumOptions().timeoutMs(10000))
                .quorumInfo());
        assertTrue(rest.contains(now.leaderId()), "quorum leader after killing " + killed + ": " + now);
        assertEquals(3, now.voters().size(), "voters after the kill: " + now);

        // The partitions of both topics that the survivors lead (the killed broker's keep
        // it as leader until it is fenced, or have none after).
        List<TopicPartition> alive = new ArrayList<>();
        Map<String, TopicDescription> descs = describe(restAdmin, Map.of(topic, PARTITIONS, after, 6));
        for (TopicDescription d : descs.values()) {
            leaders(d).forEach((p, leader) -> {
                if (rest.contains(leader)) {
                    alive.add(new TopicPartition(d.name(), p));
                }
            });
        }
        assertTrue(alive.stream().anyMatch(tp -> tp.topic().equals(topic)), "no partition of " + topic
                + " on the survivors: " + descs);
        assertTrue(alive.stream().anyMatch(tp -> tp.topic().equals(after)), "no partition of " + after
                + " on the survivors: " + descs);

        KafkaProducer<String, String> producer = producer(restBoot);
        int n = 40 * alive.size();
        Map<TopicPartition, Long> endBefore = new HashMap<>();
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            TopicPartition tp = alive.get(i % alive.size());
            sent.add(producer.send(new ProducerRecord<>(tp.topic(), tp.partition(), "k" + i, "after-" + i)));
        }
        producer.flush();
        for (Future<RecordMetadata> f : sent) {
            RecordMetadata md = f.get(0, TimeUnit.SECONDS);
            endBefore.merge(new TopicPartition(md.topic(), md.partition()), md.offset(), Math::min);
        }

        // A group whose coordinator is a survivor: the killed broker's groups wait for it.
        String group = null;
        for (int i = 0; i < 50 && group == null; i++) {
            String g = "cluster-after-group-" + i;
            try {
                int coordinator = restAdmin.describeConsumerGroups(List.of(g),
                        new DescribeConsumerGroupsOptions().timeoutMs(3000)).describedGroups().get(g)
                        .get(5, TimeUnit.SECONDS).coordinator().id();
                if (rest.contains(coordinator)) {
                    group = g;
                }
            } catch (ExecutionException | java.util.concurrent.TimeoutException e) {
                // coordinator not available (on the killed broker): try another name
            }
        }
        assertTrue(group != null, "no group name of 50 has a coordinator on nodes " + rest);

        KafkaConsumer<String, String> consumer = consumer(restBoot, group);
        consumer.assign(alive);
        endBefore.forEach(consumer::seek);
        Map<String, ConsumerRecord<String, String>> seen = consumeExactly(consumer, n);
        for (int i = 0; i < n; i++) {
            assertTrue(seen.containsKey("after-" + i), "record after-" + i + " not consumed");
        }
        consumer.commitSync(Duration.ofSeconds(30));
        Map<TopicPartition, OffsetAndMetadata> committed = get(
                restAdmin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata());
        assertEquals(new TreeSet<>(alive.stream().map(TopicPartition::toString).toList()),
                new TreeSet<>(committed.keySet().stream().map(TopicPartition::toString).toList()),
                "partitions with a committed offset in " + group);
        for (TopicPartition tp : alive) {
            assertEquals(consumer.position(tp), committed.get(tp).offset(), "committed offset of " + tp);
        }
    }

    /** One acknowledged record: where the producer was told it landed, and which it was. */
    private record Ack(int partition, long offset, long seq) {
    }

    private static String failoverValue(long seq) {
        return String.format("f-%08d", seq);
    }

    /**
     * The Java client follows a partition leader's loss by itself. Six partitions with
     * three replicas each and min.insync.replicas=2; an idempotent acks=all producer,
     * bootstrapped with all three nodes, sends keyed records without pause; after some
     * acks the leader of partition 0 is killed with SIGKILL. The producer, with no help
     * from this code, gets acks again on every partition (from records sent after the
     * kill), and no send fails. A consumer group on the two survivors then reads each
     * acknowledged record exactly once, at the offset it was acknowledged with, and per
     * partition in the order of sending (the producer's per-partition order, which
     * idempotence keeps). The killed node, started again, is listed by Metadata and
     * rejoins every partition's ISR.
     */
    @Test
    @Timeout(150)
    void killedLeaderProducerAndGroupFollow() throws Exception {
        final String topic = "cluster-failover";
        final int parts = 6;
        Admin admin = admin(cluster.bootstrapAll());
        createReplicated(admin, topic, parts);

        Map<String, Object> pc = new HashMap<>();
        pc.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, cluster.bootstrapAll());
        pc.put(ProducerConfig.ACKS_CONFIG, "all");
        pc.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        // Otherwise the client's defaults (request.timeout.ms 30 s, delivery.timeout.ms
        // 120 s): nothing tuned for the failover.
        KafkaProducer<String, String> producer = track(
                new KafkaProducer<>(pc, new StringSerializer(), new StringSerializer()));

        // Filled by the producer's callbacks, in the order they ran (per partition that is
        // the order of acknowledgement).
        List<Ack> acks = Collections.synchronizedList(new ArrayList<>());
        List<String> sendErrors = Collections.synchronizedList(new ArrayList<>());
        Map<Integer, Long> lastAckedSeq = new ConcurrentHashMap<>();
        AtomicLong nextSeq = new AtomicLong();
        AtomicBoolean stop = new AtomicBoolean();
        AtomicReference<Throwable> producerFailed =
                new AtomicReference<>();
        Thread sender = new Thread(() -> {
            try {
                while (!stop.get()) {
                    long seq = nextSeq.get();
                    producer.send(new ProducerRecord<>(topic, "k" + (seq % 997), failoverValue(seq)), (md, e) -> {
                        if (e != null) {
                            sendErrors.add(failoverValue(seq) + ": " + e);
                            return;
                        }
                        acks.add(new Ack(md.partition(), md.offset(), seq));
                        lastAckedSeq.merge(md.partition(), seq, Math::max);
                    });
                    nextSeq.incrementAndGet();
                    if (seq % 2 == 1) {
                        Thread.sleep(1); // about a thousand records a second
                    }
                }
                producer.flush();
            } catch (Throwable t) {
                producerFailed.set(t);
            }
        }, "failover-producer");
        sender.start();
        int victim;
        try {
            waitUntil("300 acks on every partition before the kill", Duration.ofSeconds(30), () -> {
                checkProducer(sendErrors, producerFailed);
                return acks.size() >= 300 && lastAckedSeq.size() == parts;
            });
            victim = leaders(describe(admin, Map.of(topic, parts)).get(topic)).get(0);
            assertTrue(victim >= 1 && victim <= NODES, "leader of partition 0: " + victim);
            cluster.kill(victim);
            long killedAt = nextSeq.get();
            int ackedAtKill = acks.size();
            // Acks again on every partition, for records sent after the kill: the client
            // found the new leaders by itself.
            waitUntil("acks on every partition for records sent after node " + victim + " was killed",
                    Duration.ofSeconds(30), () -> {
                        checkProducer(sendErrors, producerFailed);
                        return IntStream.range(0, parts).allMatch(p -> lastAckedSeq.getOrDefault(p, -1L) >= killedAt);
                    });
            System.err.println("failover: " + ackedAtKill + " acks before killing node " + victim + ", "
                    + acks.size() + " once every partition took writes again");
        } finally {
            stop.set(true);
            sender.join(TimeUnit.SECONDS.toMillis(100));
        }
        assertTrue(!sender.isAlive(), "the producer's flush did not return");
        checkProducer(sendErrors, producerFailed);
        assertEquals(nextSeq.get(), acks.size(), "every record sent was acknowledged once");

        List<Integer> rest = IntStream.rangeClosed(1, NODES).filter(i -> i != victim).boxed().toList();
        String restBoot = rest.stream().map(cluster::bootstrap).collect(Collectors.joining(","));

        // Everything acknowledged, read back by a consumer group from the survivors.
        KafkaConsumer<String, String> consumer = consumer(restBoot, "cluster-failover-group");
        consumer.subscribe(List.of(topic));
        Map<Integer, TreeMap<Long, String>> got = new TreeMap<>();
        Map<String, String> where = new HashMap<>();
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        int consumed = 0;
        while (consumed < acks.size()) {
            assertTrue(System.nanoTime() < deadline, "consumed only " + consumed + " of " + acks.size());
            for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                consumed++;
                String at = r.partition() + "/" + r.offset();
                String before = where.put(r.value(), at);
                assertNull(before, r.value() + " consumed twice: at " + before + " and " + at);
                got.computeIfAbsent(r.partition(), p -> new TreeMap<>()).put(r.offset(), r.value());
            }
        }
        for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
            fail("a record beyond the acknowledged ones: " + r.value() + " at " + r.partition() + "/" + r.offset());
        }
        consumer.commitSync(Duration.ofSeconds(30));

        Map<Integer, Long> lastOffset = new HashMap<>();
        for (Ack a : acks) {
            String v = failoverValue(a.seq());
            assertEquals(v, got.getOrDefault(a.partition(), new TreeMap<>()).get(a.offset()),
                    "record at " + a.partition() + "/" + a.offset() + ", acknowledged as " + v);
            Long prev = lastOffset.put(a.partition(), a.offset());
            assertTrue(prev == null || prev < a.offset(), "partition " + a.partition() + " acknowledged offset "
                    + a.offset() + " after " + prev);
        }
        for (Map.Entry<Integer, TreeMap<Long, String>> e : got.entrySet()) {
            String prev = null;
            for (String v : e.getValue().values()) {
                assertTrue(prev == null || prev.compareTo(v) < 0, "partition " + e.getKey() + " has " + v
                        + " after " + prev + ": not in the order sent");
                prev = v;
            }
        }

        // The killed node comes back: Metadata lists it again, and it catches up with
        // every partition's leader and rejoins the ISR.
        cluster.restart(victim);
        Admin restAdmin = admin(restBoot);
        waitUntil("node " + victim + " listed by Metadata again", Duration.ofSeconds(30),
                () -> get(restAdmin.describeCluster().nodes()).stream().anyMatch(n -> n.id() == victim));
        describeUntil(restAdmin, topic, "node " + victim + " in every partition's ISR again",
                d -> d.partitions().stream().allMatch(p -> p.isr().stream().anyMatch(n -> n.id() == victim)));
    }

    /**
     * AlterPartitionReassignments and ListPartitionReassignments as the Java Admin client
     * (and kafka-reassign-partitions.sh) send them: a partition of one replica moves to
     * the two other brokers, with every record it held, and the listing empties once it is
     * done; refused targets come back as Kafka's exceptions.
     */
    @Test
    @Timeout(90)
    void partitionReassignmentThroughTheAdminApi() throws Exception {
        String boot = cluster.bootstrap(notController());
        String topic = "cluster-move";
        Admin admin = admin(boot);
        get(admin.createTopics(List.of(new NewTopic(topic, 2, (short) 1))).all());
        TopicPartition tp = new TopicPartition(topic, 0);
        int from = describe(admin, Map.of(topic, 2)).get(topic).partitions().get(0).leader().id();
        List<Integer> to = IntStream.rangeClosed(1, NODES).filter(n -> n != from).boxed().toList();
        Map<Integer, Integer> perPartition = produceKeyed(producer(boot), topic, 1000, "m");

        Map<TopicPartition, Optional<NewPartitionReassignment>> cancel = Map.of(tp, Optional.empty());
        ExecutionException e = assertThrowsExecution(() -> get(admin.alterPartitionReassignments(cancel).all()));
        assertTrue(e.getCause() instanceof NoReassignmentInProgressException, "cancel: " + e.getCause());
        Map<TopicPartition, Optional<NewPartitionReassignment>> unknown =
                Map.of(tp, Optional.of(new NewPartitionReassignment(List.of(to.get(0), 42))));
        e = assertThrowsExecution(() -> get(admin.alterPartitionReassignments(unknown).all()));
        assertTrue(e.getCause() instanceof InvalidReplicaAssignmentException, "broker 42: " + e.getCause());
        Map<TopicPartition, Optional<NewPartitionReassignment>> move =
                Map.of(tp, Optional.of(new NewPartitionReassignment(to)));
        e = assertThrowsExecution(() -> get(admin.alterPartitionReassignments(move,
                new AlterPartitionReassignmentsOptions().allowReplicationFactorChange(false)).all()));
        assertTrue(e.getCause() instanceof InvalidReplicationFactorException, "factor change: " + e.getCause());

        get(admin.alterPartitionReassignments(move).all());
        waitUntil("the reassignment done", CALL, () -> {
            Map<TopicPartition, PartitionReassignment> ongoing = get(admin.listPartitionReassignments().reassignments());
            return ongoing.isEmpty();
        });
        describeUntil(admin, topic, "partition 0 on " + to, d -> {
            TopicPartitionInfo p = d.partitions().get(0);
            return p.replicas().stream().map(n -> n.id()).toList().equals(to)
                    && p.isr().size() == 2 && to.contains(p.leader().id());
        });
        KafkaConsumer<String, String> consumer = consumer(boot, "cluster-move-group");
        consumer.subscribe(List.of(topic));
        Map<String, ConsumerRecord<String, String>> seen = consumeExactly(consumer, 1000);
        assertEquals((long) perPartition.get(0),
                seen.values().stream().filter(r -> r.partition() == 0).count(), "records of partition 0");
    }

    private static ExecutionException assertThrowsExecution(Callable<?> call) throws Exception {
        try {
            call.call();
        } catch (ExecutionException e) {
            return e;
        }
        return fail("expected the call to fail");
    }

    /** Describes topic until cond holds of it (at most 30 s), failing with the last description. */
    private static void describeUntil(Admin admin, String topic, String what, Predicate<TopicDescription> cond)
            throws Exception {
        long deadline = System.nanoTime() + CALL.toNanos();
        Object last = null;
        while (true) {
            try {
                TopicDescription d = get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic);
                if (cond.test(d)) {
                    return;
                }
                last = d;
            } catch (ExecutionException e) {
                last = e.getCause();
            }
            assertTrue(System.nanoTime() < deadline, what + ": not within " + CALL + "; last: " + last);
            Thread.sleep(100);
        }
    }

    private static void checkProducer(List<String> sendErrors, AtomicReference<Throwable> t) {
        assertNull(t.get(), "the producer thread failed");
        synchronized (sendErrors) {
            assertTrue(sendErrors.isEmpty(), sendErrors.size() + " sends failed, the first: "
                    + sendErrors.subList(0, Math.min(5, sendErrors.size())));
        }
    }

    private static void waitUntil(String what, Duration bound, Callable<Boolean> cond)
            throws Exception {
        long deadline = System.nanoTime() + bound.toNanos();
        while (!cond.call()) {
            assertTrue(System.nanoTime() < deadline, what + ": not within " + bound);
            Thread.sleep(50);
        }
    }

    private void closeCluster() {
        if (cluster != null) {
            cluster.close();
            cluster = null;
        }
    }
}
