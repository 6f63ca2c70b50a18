package samsa.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.InvalidRecordException;
import org.apache.kafka.common.header.Header;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Samsa's delayed delivery through the Java client with its defaults (idempotent,
 * acks=all): records with samsa.deliver.after appear in their partition when due, once,
 * with their headers; plain records of the same producer keep flowing in between; a bad
 * header fails that send with InvalidRecordException and its message.
 */
class DelayedDeliveryTest extends BrokerTestBase {
    @BeforeAll
    static void start() throws Exception {
        startBroker(Map.of());
    }

    private static ProducerRecord<String, String> delayed(String topic, String value, long afterMs) {
        ProducerRecord<String, String> r = new ProducerRecord<>(topic, 0, "k-" + value, value);
        r.headers().add("samsa.deliver.after", Long.toString(afterMs).getBytes(StandardCharsets.US_ASCII));
        return r;
    }

    @Test
    @Timeout(120)
    void delayedAndPlainFromOneIdempotentProducer() throws Exception {
        String topic = "java-delayed";
        createTopic(admin(), topic, 1);
        KafkaProducer<String, String> producer = producer();
        long t0 = System.currentTimeMillis();
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        Map<String, Long> due = new HashMap<>();
        for (int i = 0; i < 300; i++) {
            String v = "v" + i;
            long after = i % 3 == 0 ? -1 : (i % 3 == 1 ? 0 : 800);
            sent.add(producer.send(after < 0 ? new ProducerRecord<>(topic, 0, "k-" + v, v) : delayed(topic, v, after)));
            due.put(v, t0 + Math.max(after, 0));
        }
        producer.flush();
        for (Future<RecordMetadata> f : sent) {
            assertTrue(f.get(0, TimeUnit.SECONDS).hasOffset());
        }

        KafkaConsumer<String, String> consumer = consumer("java-delay-readers", Map.of());
        consumer.subscribe(List.of(topic));
        Map<String, Integer> seen = new HashMap<>();
        long deadline = System.currentTimeMillis() + 60_000;
        while (seen.size() < 300 && System.currentTimeMillis() < deadline) {
            for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                long now = System.currentTimeMillis();
                assertTrue(now >= due.get(r.value()), r.value() + " seen " + (due.get(r.value()) - now) + " ms early");
                assertEquals("k-" + r.value(), r.key());
                seen.merge(r.value(), 1, Integer::sum);
                Header id = r.headers().lastHeader("samsa.delay.id");
                // A delayed record comes with its id in the delay store (so do plain ones
                // that shared its batch: a batch goes through the store whole).
                if (r.headers().lastHeader("samsa.deliver.after") != null) {
                    assertNotNull(id, "samsa.delay.id on " + r.value());
                }
            }
        }
        Thread.sleep(500);
        for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
            seen.merge(r.value(), 1, Integer::sum);
        }
        assertEquals(300, seen.size(), "records seen: " + seen.size());
        seen.forEach((v, n) -> assertEquals(1, n, v + " seen " + n + " times"));
    }

    @Test
    @Timeout(60)
    void malformedHeaderFailsTheSend() throws Exception {
        String topic = "java-delayed-bad";
        createTopic(admin(), topic, 1);
        KafkaProducer<String, String> producer = producer(Map.of("retries", "0"));
        ProducerRecord<String, String> r = new ProducerRecord<>(topic, 0, "k", "v");
        r.headers().add("samsa.deliver.after", "soon".getBytes(StandardCharsets.US_ASCII));
        ExecutionException e = assertThrows(ExecutionException.class, () -> producer.send(r).get(30, TimeUnit.SECONDS));
        assertInstanceOf(InvalidRecordException.class, e.getCause());
        assertNotNull(e.getCause().getMessage());
        assertTrue(e.getCause().getMessage().contains("samsa.deliver.after"), e.getCause().getMessage());
    }
}
