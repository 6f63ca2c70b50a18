package samsa.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.BooleanSupplier;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.CooperativeStickyAssignor;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.RangeAssignor;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.RebalanceInProgressException;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * KafkaConsumer in a classic consumer group (group.protocol=classic, the default) with
 * manual commits (commitSync after every poll) and rebalances. Several consumers are
 * driven from the test thread by polling them in turn with short timeouts, which is how a
 * member's join, sync and heartbeats make progress.
 */
class ConsumerGroupTest extends BrokerTestBase {
    private static final int PARTITIONS = 6;
    private static final Duration PHASE = Duration.ofSeconds(60);

    @BeforeAll
    static void start() throws Exception {
        // No wait for more members when a group forms: the tests control who joins when.
        startBroker(Map.of("group.initial.rebalance.delay.ms", "0"));
    }

    /** Who consumed what: (partition, offset) -> names of the members that got it. */
    private final Map<String, List<String>> consumedBy = new TreeMap<>();

    /**
     * A group member that commits what it processed after each poll. While its own rejoin is
     * under way (cooperative rebalancing lets poll() return records then) the client refuses
     * to commit (RebalanceInProgressException, on the client side); such offsets are
     * committed after the next poll, or in onPartitionsRevoked before a partition moves, as
     * Kafka's documentation advises.
     */
    private final class Member implements ConsumerRebalanceListener {
        final String name;
        final KafkaConsumer<String, String> consumer;
        final Set<TopicPartition> owned = new HashSet<>();
        final Map<TopicPartition, OffsetAndMetadata> pending = new HashMap<>();
        int consumed;
        int assignedCalls;
        int revokedCalls;
        int lostCalls;
        int deferredCommits;

        Member(String name, String group, String topic, String assignor) {
            this.name = name;
            this.consumer = consumer(group, Map.of(
                    ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, assignor,
                    ConsumerConfig.CLIENT_ID_CONFIG, name,
                    ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "50",
                    ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "10000",
                    ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "300"));
            consumer.subscribe(List.of(topic), this);
        }

        void poll() {
            for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(100))) {
                TopicPartition tp = new TopicPartition(r.topic(), r.partition());
                assertTrue(owned.contains(tp), name + " got a record of " + tp + ", which it does not own " + owned);
                assertEquals("r" + (r.offset() * PARTITIONS + r.partition()), r.value(),
                        "value at " + tp + "/" + r.offset());
                consumedBy.computeIfAbsent(r.partition() + "/" + r.offset(), k -> new ArrayList<>()).add(name);
                consumed++;
                pending.put(tp, new OffsetAndMetadata(r.offset() + 1, "by " + name));
            }
            commitPending();
        }

        void commitPending() {
            if (pending.isEmpty()) {
                return;
            }
            try {
                consumer.commitSync(pending, CALL);
                pending.clear();
            } catch (RebalanceInProgressException e) {
                deferredCommits++;
            }
        }

        @Override
        public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
            revokedCalls++;
            commitPending();
            assertTrue(pending.isEmpty(), name + " could not commit " + pending + " before losing " + partitions);
            owned.removeAll(partitions);
        }

        @Override
        public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
            assignedCalls++;
            owned.addAll(partitions);
        }

        @Override
        public void onPartitionsLost(Collection<TopicPartition> partitions) {
            lostCalls++;
            owned.removeAll(partitions);
        }
    }

    /** Produces records n0..n1-1 of the topic: record i goes to partition i % 6 as "r" + i. */
    private void produce(KafkaProducer<String, String> producer, String topic, int n0, int n1) {
        for (int i = n0; i < n1; i++) {
            producer.send(new ProducerRecord<>(topic, i % PARTITIONS, "k" + i, "r" + i));
        }
        producer.flush();
    }

    private static void pollUntil(String what, List<Member> members, BooleanSupplier done) {
        long deadline = System.nanoTime() + PHASE.toNanos();
        while (!done.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                StringBuilder sb = new StringBuilder();
                for (Member m : members) {
                    sb.append(String.format(" %s owns %s, consumed %d;", m.name, m.owned, m.consumed));
                }
                throw new AssertionError("timed out after " + PHASE + " waiting for " + what + ":" + sb);
            }
            for (Member m : members) {
                m.poll();
            }
        }
    }

    private Set<TopicPartition> allPartitions(String topic) {
        Set<TopicPartition> s = new HashSet<>();
        for (int p = 0; p < PARTITIONS; p++) {
            s.add(new TopicPartition(topic, p));
        }
        return s;
    }

    /**
     * Two consumers of one group: A starts alone, B joins mid-stream (the partitions are
     * split), more records arrive, A leaves (close) and B takes over everything. Every record
     * is consumed exactly once across both rebalances, because each member resumes at the
     * offsets the other committed; committed() then reports the log end on every partition,
     * and a later member of the group starts there.
     */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"range", "cooperative-sticky"})
    @Timeout(180)
    void exactlyOnceAcrossJoinAndLeave(String assignorName) throws Exception {
        // range: eager rebalances (everything revoked, then reassigned); cooperative-sticky:
        // incremental ones (only the moved partitions are revoked, in a second round).
        String assignor = assignorName.equals("range") ? RangeAssignor.class.getName()
                : CooperativeStickyAssignor.class.getName();
        String topic = "group-events-" + assignorName;
        String group = "group-rebalance-" + assignorName;
        Admin admin = admin();
        createTopic(admin, topic, PARTITIONS);
        KafkaProducer<String, String> producer = producer();
        produce(producer, topic, 0, 600);

        Member a = new Member("A", group, topic, assignor);
        pollUntil("A to consume 100 records alone", List.of(a), () -> a.consumed >= 100);
        assertEquals(allPartitions(topic), a.owned, "A alone owns every partition");

        Member b = new Member("B", group, topic, assignor);
        pollUntil("the partitions to be split between A and B", List.of(a, b), () ->
                !a.owned.isEmpty() && !b.owned.isEmpty() && a.owned.size() + b.owned.size() == PARTITIONS);
        Set<TopicPartition> union = new HashSet<>(a.owned);
        union.addAll(b.owned);
        assertEquals(allPartitions(topic), union, "A and B together own every partition once");
        assertTrue(a.revokedCalls >= 1, "A's partitions were revoked when B joined");

        int aBefore = a.consumed;
        int bBefore = b.consumed;
        produce(producer, topic, 600, 1200);
        pollUntil("A and B to consume 1200 records", List.of(a, b), () -> consumedBy.size() >= 1200);
        assertTrue(a.consumed > aBefore, "A consumed after B joined");
        assertTrue(b.consumed > bBefore, "B consumed after it joined");

        produce(producer, topic, 1200, 1800);
        a.poll();
        a.consumer.close(); // commits in onPartitionsRevoked, then leaves the group
        pollUntil("B to take over and consume all 1800 records", List.of(b),
                () -> consumedBy.size() >= 1800 && b.owned.size() == PARTITIONS);

        List<String> twice = new ArrayList<>();
        for (Map.Entry<String, List<String>> e : consumedBy.entrySet()) {
            if (e.getValue().size() != 1) {
                twice.add(e.getKey() + " by " + e.getValue());
            }
        }
        assertTrue(twice.isEmpty(), "records consumed more than once: " + twice);
        assertEquals(1800, consumedBy.size(), "distinct records consumed");
        for (int p = 0; p < PARTITIONS; p++) {
            for (int o = 0; o < 300; o++) {
                assertNotNull(consumedBy.get(p + "/" + o), "record " + p + "/" + o + " was never consumed");
            }
        }
        assertEquals(0, a.lostCalls + b.lostCalls, "no member lost its partitions (session timeouts)");
        assertTrue(b.assignedCalls >= 2, "B was assigned partitions on joining and after A left");

        Map<TopicPartition, OffsetAndMetadata> committed = b.consumer.committed(allPartitions(topic), CALL);
        for (TopicPartition tp : allPartitions(topic)) {
            OffsetAndMetadata om = committed.get(tp);
            assertNotNull(om, "no committed offset for " + tp);
            assertEquals(300, om.offset(), "committed offset of " + tp);
            assertTrue(om.metadata().equals("by A") || om.metadata().equals("by B"),
                    "metadata of " + tp + ": " + om.metadata());
        }
        b.consumer.close();

        // A new member resumes at the committed offsets: it gets only what came after.
        assertEquals(1800, consumedBy.size());
        produce(producer, topic, 1800, 1812);
        Member c = new Member("C", group, topic, assignor);
        pollUntil("C to consume the 12 new records", List.of(c), () -> consumedBy.size() >= 1812);
        for (int i = 0; i < 5; i++) {
            c.poll(); // anything more would be a record consumed twice
        }
        assertEquals(12, c.consumed, "records C consumed");
        for (int i = 1800; i < 1812; i++) {
            int p = i % PARTITIONS;
            int o = i / PARTITIONS;
            assertEquals(List.of("C"), consumedBy.get(p + "/" + o), "record " + i);
        }
    }

    /**
     * commitSync with explicit offsets and metadata, then commitSync() of the positions:
     * committed() reports each as committed, and null for a partition never committed.
     */
    @Test
    @Timeout(90)
    void commitSyncAndCommitted() throws Exception {
        String topic = "group-commits";
        Admin admin = admin();
        createTopic(admin, topic, 3);
        KafkaProducer<String, String> producer = producer();
        for (int i = 0; i < 20; i++) {
            producer.send(new ProducerRecord<>(topic, i % 2, "k" + i, "v" + i)); // partitions 0, 1
        }
        producer.flush();

        KafkaConsumer<String, String> consumer = consumer("group-commits", Map.of());
        consumer.subscribe(List.of(topic));
        int seen = 0;
        long deadline = System.nanoTime() + PHASE.toNanos();
        while (seen < 20) {
            assertTrue(System.nanoTime() < deadline, "consumed only " + seen + " of 20");
            seen += consumer.poll(Duration.ofMillis(200)).count();
        }
        TopicPartition p0 = new TopicPartition(topic, 0);
        TopicPartition p1 = new TopicPartition(topic, 1);
        TopicPartition p2 = new TopicPartition(topic, 2);

        consumer.commitSync(Map.of(p0, new OffsetAndMetadata(4, "four"), p1, new OffsetAndMetadata(7)), CALL);
        Map<TopicPartition, OffsetAndMetadata> c = consumer.committed(Set.of(p0, p1, p2), CALL);
        assertEquals(4, c.get(p0).offset());
        assertEquals("four", c.get(p0).metadata());
        assertEquals(7, c.get(p1).offset());
        assertEquals("", c.get(p1).metadata());
        assertNull(c.get(p2), "partition 2 was never committed");

        consumer.commitSync(CALL); // the positions: the end of each partition
        c = consumer.committed(Set.of(p0, p1, p2), CALL);
        assertEquals(10, c.get(p0).offset());
        assertEquals(10, c.get(p1).offset());
        assertNotNull(c.get(p2), "commitSync() commits every assigned partition's position");
        assertEquals(0, c.get(p2).offset(), "partition 2 (empty) committed at its position");
    }
}
