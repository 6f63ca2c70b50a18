package samsa.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ListOffsetsResult.ListOffsetsResultInfo;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.DescribeProducersResult.PartitionProducerState;
import org.apache.kafka.clients.admin.ProducerState;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** KafkaProducer with its defaults: idempotent, acks=all. */
class ProducerTest extends BrokerTestBase {
    @BeforeAll
    static void start() throws Exception {
        startBroker(Map.of());
    }

    /**
     * Many records to several partitions; after flush() every send has completed, and each
     * partition's offsets are 0, 1, 2, ... in send order (idempotence keeps the order even
     * with five requests in flight). The broker lists the producer as an idempotent one on
     * each partition with the last sequence it sent, and a consumer reads every record back.
     */
    @Test
    @Timeout(120)
    void defaultsManyRecordsSeveralPartitions() throws Exception {
        String topic = "producer-defaults";
        int partitions = 4;
        int perPartition = 1500;
        Admin admin = admin();
        createTopic(admin, topic, partitions);

        KafkaProducer<String, String> producer = producer();
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        for (int i = 0; i < partitions * perPartition; i++) {
            sent.add(producer.send(new ProducerRecord<>(topic, i % partitions, "k" + i, "v" + i)));
        }
        producer.flush();

        long[] next = new long[partitions];
        for (int i = 0; i < sent.size(); i++) {
            Future<RecordMetadata> f = sent.get(i);
            assertTrue(f.isDone(), "send " + i + " not complete after flush()");
            RecordMetadata md = f.get(0, TimeUnit.SECONDS);
            int p = i % partitions;
            assertEquals(topic, md.topic());
            assertEquals(p, md.partition());
            assertTrue(md.hasOffset(), "record " + i + " has no offset");
            assertEquals(next[p]++, md.offset(), "offset of record " + i);
            assertTrue(md.hasTimestamp() && md.timestamp() > 0, "record " + i + " timestamp " + md.timestamp());
        }

        Map<TopicPartition, OffsetSpec> latest = new HashMap<>();
        List<TopicPartition> tps = new ArrayList<>();
        for (int p = 0; p < partitions; p++) {
            TopicPartition tp = new TopicPartition(topic, p);
            tps.add(tp);
            latest.put(tp, OffsetSpec.latest());
        }
        Map<TopicPartition, ListOffsetsResultInfo> ends = get(admin.listOffsets(latest).all());
        for (TopicPartition tp : tps) {
            assertEquals(perPartition, ends.get(tp).offset(), "log end offset of " + tp);
        }

        Map<TopicPartition, PartitionProducerState> states = get(admin.describeProducers(tps).all());
        long producerId = -1;
        for (TopicPartition tp : tps) {
            List<ProducerState> active = states.get(tp).activeProducers();
            assertEquals(1, active.size(), "active producers on " + tp + ": " + active);
            ProducerState ps = active.get(0);
            assertTrue(ps.producerId() >= 0, "producer id " + ps.producerId());
            if (producerId >= 0) {
                assertEquals(producerId, ps.producerId(), "one producer id on every partition");
            }
            producerId = ps.producerId();
            assertEquals(perPartition - 1, ps.lastSequence(), "last sequence on " + tp);
        }

        KafkaConsumer<String, String> consumer = consumer(null, Map.of());
        consumer.assign(tps);
        consumer.seekToBeginning(tps);
        int total = partitions * perPartition;
        int seen = 0;
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (seen < total) {
            assertTrue(System.nanoTime() < deadline, "read back only " + seen + " of " + total);
            for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                long i = r.offset() * partitions + r.partition();
                assertEquals("k" + i, r.key(), "key at " + r.partition() + "/" + r.offset());
                assertEquals("v" + i, r.value(), "value at " + r.partition() + "/" + r.offset());
                seen++;
            }
        }
        assertEquals(total, seen);
    }

    /** A send to a topic that does not exist creates it (auto.create.topics.enable=true). */
    @Test
    @Timeout(60)
    void sendAutoCreatesTopic() throws Exception {
        KafkaProducer<String, String> producer = producer();
        RecordMetadata md = producer.send(new ProducerRecord<>("producer-auto-created", "k", "v"))
                .get(30, TimeUnit.SECONDS);
        assertEquals(0, md.partition());
        assertEquals(0, md.offset());
        assertTrue(get(admin().listTopics().names()).contains("producer-auto-created"));
    }
}
