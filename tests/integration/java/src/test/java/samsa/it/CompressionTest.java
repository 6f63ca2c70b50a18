package samsa.it;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.header.Header;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * A producer with compression.type gzip/snappy/lz4/zstd: the records come back intact, and
 * the broker stored every batch with the producer's codec (topic compression.type=producer):
 * the attributes of each batch in the partition's segment file (Kafka's on-disk format, the
 * codec in the low three bits) name it.
 */
class CompressionTest extends BrokerTestBase {
    private static final int RECORDS = 500;

    @BeforeAll
    static void start() throws Exception {
        startBroker(Map.of());
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource({"gzip, 1", "snappy, 2", "lz4, 3", "zstd, 4"})
    @Timeout(90)
    void roundTripKeepsProducerCodec(String codec, int codecId) throws Exception {
        String topic = "compressed-" + codec;
        Admin admin = admin();
        createTopic(admin, topic, 1);
        ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        Config cfg = get(admin.describeConfigs(List.of(res)).all()).get(res);
        assertEquals("producer", cfg.get("compression.type").value(), "topic compression.type");

        KafkaProducer<String, String> producer = producer(Map.of(
                ProducerConfig.COMPRESSION_TYPE_CONFIG, codec,
                ProducerConfig.LINGER_MS_CONFIG, "20"));
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        for (int i = 0; i < RECORDS; i++) {
            ProducerRecord<String, String> r = new ProducerRecord<>(topic, 0, "key-" + i, value(i));
            r.headers().add("n", Integer.toString(i).getBytes(StandardCharsets.UTF_8));
            sent.add(producer.send(r));
        }
        producer.flush();
        for (int i = 0; i < RECORDS; i++) {
            assertEquals(i, sent.get(i).get(0, TimeUnit.SECONDS).offset(), "offset of record " + i);
        }

        TopicPartition tp = new TopicPartition(topic, 0);
        KafkaConsumer<String, String> consumer = consumer(null, Map.of());
        consumer.assign(List.of(tp));
        consumer.seekToBeginning(List.of(tp));
        int seen = 0;
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (seen < RECORDS) {
            assertTrue(System.nanoTime() < deadline, "read back only " + seen + " of " + RECORDS);
            for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                assertEquals(seen, r.offset());
                assertEquals("key-" + seen, r.key());
                assertEquals(value(seen), r.value());
                Header[] h = r.headers().toArray();
                assertEquals(1, h.length);
                assertEquals("n", h[0].key());
                assertArrayEquals(Integer.toString(seen).getBytes(StandardCharsets.UTF_8), h[0].value());
                seen++;
            }
        }

        // The stored batches: every one compressed with the producer's codec.
        Path log = broker.dataDir().resolve(topic + "-0").resolve("00000000000000000000.log");
        ByteBuffer buf = ByteBuffer.wrap(Files.readAllBytes(log));
        int batches = 0;
        long records = 0;
        while (buf.remaining() >= 61) {
            int pos = buf.position();
            long baseOffset = buf.getLong(pos);
            int length = buf.getInt(pos + 8);
            if (length <= 0) {
                break; // preallocated tail
            }
            assertEquals(2, buf.get(pos + 16), "magic of batch at file position " + pos);
            int attributes = buf.getShort(pos + 21);
            assertEquals(codecId, attributes & 7,
                    "codec of batch at offset " + baseOffset + " (attributes " + attributes + ")");
            records += buf.getInt(pos + 57);
            batches++;
            buf.position(pos + 12 + length);
        }
        assertTrue(batches > 0, "no batch in " + log);
        assertEquals(RECORDS, records, "records in the stored batches");
    }

    /** Compressible text that differs per record. */
    private static String value(int i) {
        return ("value " + i + " ").repeat(1 + i % 20);
    }
}
