package samsa.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.apache.kafka.clients.admin.AbortTransactionSpec;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ProducerState;
import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.admin.TransactionListing;
import org.apache.kafka.clients.admin.TransactionState;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The Java client's transactional producer against read_committed consumers: commit,
 * abort, sendOffsetsToTransaction, a zombie fenced by a new instance, and the Admin API.
 * Here the broker advertises transaction.version 2 (its default, as Kafka 4.4's), so the
 * client adds no partitions itself and every EndTxn (v5) bumps its epoch;
 * TransactionsV1Test runs the same tests with transaction version 1.
 */
class TransactionsTest extends BrokerTestBase {
    @BeforeAll
    static void start() throws Exception {
        startBroker(Map.of());
    }

    /** The transaction version the broker advertises, so the client uses. */
    int transactionVersion() {
        return 2;
    }

    private KafkaProducer<String, String> txnProducer(String id) {
        KafkaProducer<String, String> p =
                producer(Map.of(ProducerConfig.TRANSACTIONAL_ID_CONFIG, id));
        p.initTransactions();
        return p;
    }

    /** Every value in the topic's partitions, as a read_committed or read_uncommitted
     *  consumer sees them, read until the last stable offset / high watermark. */
    private List<String> readAll(String topic, int partitions, boolean committed) {
        KafkaConsumer<String, String> c = consumer(null, Map.of(ConsumerConfig.ISOLATION_LEVEL_CONFIG,
                committed ? "read_committed" : "read_uncommitted"));
        List<TopicPartition> tps = new ArrayList<>();
        for (int p = 0; p < partitions; p++) {
            tps.add(new TopicPartition(topic, p));
        }
        c.assign(tps);
        c.seekToBeginning(tps);
        Map<TopicPartition, Long> ends = c.endOffsets(tps);
        List<String> out = new ArrayList<>();
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (true) {
            boolean done = true;
            for (TopicPartition tp : tps) {
                done &= c.position(tp) >= ends.get(tp);
            }
            if (done) {
                break;
            }
            assertTrue(System.nanoTime() < deadline, "read only " + out.size() + " records");
            for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                out.add(r.value());
            }
        }
        out.sort(null);
        return out;
    }

    @Test
    @Timeout(120)
    void commitAndAbort() throws Exception {
        String topic = "java-tx";
        createTopic(admin(), topic, 3);
        KafkaProducer<String, String> p = txnProducer("java-app");
        p.beginTransaction();
        for (int i = 0; i < 90; i++) {
            p.send(new ProducerRecord<>(topic, i % 3, null, String.format("c-%03d", i)));
        }
        p.commitTransaction();
        p.beginTransaction();
        for (int i = 0; i < 30; i++) {
            p.send(new ProducerRecord<>(topic, i % 3, null, String.format("a-%03d", i)));
        }
        p.flush();
        p.abortTransaction();
        List<String> committed = readAll(topic, 3, true);
        assertEquals(90, committed.size(), "read_committed: " + committed.size());
        for (int i = 0; i < 90; i++) {
            assertEquals(String.format("c-%03d", i), committed.get(i));
        }
        assertEquals(120, readAll(topic, 3, false).size());
    }

    /**
     * Which transaction version the client used, as the partition saw it: version 2 bumps
     * the epoch at every commit (the markers carry the new one), version 1 never does.
     */
    @Test
    @Timeout(120)
    void epochPerTransaction() throws Exception {
        String topic = "java-tx-epochs";
        Admin admin = admin();
        createTopic(admin, topic, 1);
        KafkaProducer<String, String> p = txnProducer("java-epochs");
        for (int t = 0; t < 3; t++) {
            p.beginTransaction();
            p.send(new ProducerRecord<>(topic, 0, null, "t" + t));
            p.commitTransaction();
        }
        TopicPartition tp = new TopicPartition(topic, 0);
        ProducerState ps = get(admin.describeProducers(List.of(tp)).all()).get(tp).activeProducers().get(0);
        assertEquals(transactionVersion() >= 2 ? 3 : 0, ps.producerEpoch());
        assertEquals(List.of("t0", "t1", "t2"), readAll(topic, 1, true));
    }

    @Test
    @Timeout(120)
    void sendOffsetsToTransaction() throws Exception {
        String in = "java-tx-in", out = "java-tx-out", group = "java-etl";
        createTopic(admin(), in, 1);
        createTopic(admin(), out, 1);
        KafkaProducer<String, String> plain = producer();
        for (int i = 0; i < 20; i++) {
            plain.send(new ProducerRecord<>(in, 0, null, "v" + i));
        }
        plain.flush();
        KafkaConsumer<String, String> c = consumer(group, Map.of(ConsumerConfig.ISOLATION_LEVEL_CONFIG,
                "read_committed"));
        TopicPartition tp = new TopicPartition(in, 0);
        c.assign(List.of(tp));
        KafkaProducer<String, String> p = txnProducer("java-etl-1");
        int seen = 0;
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (seen < 20) {
            assertTrue(System.nanoTime() < deadline, "consumed only " + seen);
            var records = c.poll(Duration.ofMillis(200));
            if (records.isEmpty()) {
                continue;
            }
            p.beginTransaction();
            for (ConsumerRecord<String, String> r : records) {
                p.send(new ProducerRecord<>(out, 0, null, r.value()));
                seen++;
            }
            p.sendOffsetsToTransaction(Map.of(tp, new OffsetAndMetadata(c.position(tp))),
                    c.groupMetadata());
            p.commitTransaction();
        }
        OffsetAndMetadata committed = c.committed(java.util.Set.of(tp)).get(tp);
        assertEquals(20, committed.offset());
        assertEquals(20, readAll(out, 1, true).size());
    }

    @Test
    @Timeout(120)
    void newInstanceFencesTheZombie() throws Exception {
        String topic = "java-zombie";
        createTopic(admin(), topic, 1);
        KafkaProducer<String, String> zombie = txnProducer("java-same");
        zombie.beginTransaction();
        zombie.send(new ProducerRecord<>(topic, 0, null, "zombie"));
        zombie.flush();
        KafkaProducer<String, String> fresh = txnProducer("java-same");
        fresh.beginTransaction();
        fresh.send(new ProducerRecord<>(topic, 0, null, "fresh"));
        fresh.commitTransaction();
        assertThrows(ProducerFencedException.class, zombie::commitTransaction);
        assertEquals(List.of("fresh"), readAll(topic, 1, true));
    }

    /**
     * The Admin API's view of transactions (kafka-transactions.sh): listTransactions and
     * describeTransactions show an open transaction with its partitions; describeProducers
     * shows where it starts; abortTransaction (WriteTxnMarkers to the partition's leader)
     * ends it there, so the last stable offset moves past it.
     */
    @Test
    @Timeout(120)
    void listDescribeAndAbort() throws Exception {
        String topic = "java-hanging";
        Admin admin = admin();
        createTopic(admin, topic, 1);
        KafkaProducer<String, String> p = txnProducer("java-hanger");
        p.beginTransaction();
        p.send(new ProducerRecord<>(topic, 0, null, "open"));
        p.flush();

        boolean listed = false;
        for (TransactionListing l : get(admin.listTransactions().all())) {
            if (l.transactionalId().equals("java-hanger")) {
                listed = true;
                assertEquals(TransactionState.ONGOING, l.state());
            }
        }
        assertTrue(listed, "java-hanger not listed");
        TransactionDescription d =
                get(admin.describeTransactions(List.of("java-hanger")).all()).get("java-hanger");
        assertEquals(TransactionState.ONGOING, d.state());
        TopicPartition tp = new TopicPartition(topic, 0);
        assertEquals(java.util.Set.of(tp), d.topicPartitions());
        assertTrue(d.transactionStartTimeMs().isPresent());

        ProducerState ps = get(admin.describeProducers(List.of(tp)).all()).get(tp).activeProducers().get(0);
        assertEquals(0L, ps.currentTransactionStartOffset().getAsLong());
        get(admin.abortTransaction(new AbortTransactionSpec(tp, ps.producerId(),
                (short) ps.producerEpoch(), ps.coordinatorEpoch().orElse(-1))).all());
        KafkaConsumer<String, String> c = consumer(null, Map.of(ConsumerConfig.ISOLATION_LEVEL_CONFIG,
                "read_committed"));
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (c.endOffsets(List.of(tp)).get(tp) < 2) {
            assertTrue(System.nanoTime() < deadline, "the last stable offset did not move");
            Thread.sleep(100);
        }
        assertEquals(List.of(), readAll(topic, 1, true));
    }
}
