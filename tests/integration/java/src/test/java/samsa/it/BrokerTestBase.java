package samsa.it;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.CloseOptions;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.extension.TestWatcher;

/**
 * Base of the test classes: one samsa-server per class (subclasses start it in their
 * {@code @BeforeAll} with {@link #startBroker}), clients made here are closed after each
 * test, and the broker is killed and its dir removed after the class, whatever happened.
 * A failed test prints the tail of the server's log.
 */
abstract class BrokerTestBase {
    static final Duration CALL = Duration.ofSeconds(30);
    static SamsaBroker broker;

    private final List<AutoCloseable> clients = new ArrayList<>();

    @RegisterExtension
    static final TestWatcher DUMP_ON_FAILURE = new TestWatcher() {
        @Override
        public void testFailed(ExtensionContext context, Throwable cause) {
            if (broker != null) {
                System.err.println("---- samsa-server stderr tail (" + context.getDisplayName() + ") ----\n"
                        + broker.stderrTail(40));
            }
        }
    };

    static void startBroker(Map<String, String> overrides) throws Exception {
        broker = SamsaBroker.start(overrides);
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

    @AfterAll
    static void stopBroker() {
        if (broker != null) {
            broker.close();
            broker = null;
        }
    }

    <T extends AutoCloseable> T track(T client) {
        clients.add(client);
        return client;
    }

    Admin admin() {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap());
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "20000");
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        return track(Admin.create(p));
    }

    /** A producer with the client's defaults (idempotent, acks=all) plus {@code extra}. */
    KafkaProducer<String, String> producer(Map<String, Object> extra) {
        Map<String, Object> p = new HashMap<>();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap());
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "30000");
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "60000");
        p.putAll(extra);
        return track(new KafkaProducer<>(p, new StringSerializer(), new StringSerializer()));
    }

    KafkaProducer<String, String> producer() {
        return producer(Map.of());
    }

    /** A consumer; {@code group} may be null for assign()-only use. Auto commit is off,
     *  a partition without a committed offset starts at the earliest. */
    KafkaConsumer<String, String> consumer(String group, Map<String, Object> extra) {
        Map<String, Object> p = new HashMap<>();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap());
        if (group != null) {
            p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
            // Kafka's classic group protocol (JoinGroup/SyncGroup/Heartbeat), the 4.x default;
            // Samsa does not serve KIP-848's ConsumerGroupHeartbeat.
            p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic");
        }
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        p.putAll(extra);
        return track(new KafkaConsumer<>(p, new StringDeserializer(), new StringDeserializer()));
    }

    static void createTopic(Admin admin, String name, int partitions) throws Exception {
        admin.createTopics(List.of(new NewTopic(name, partitions, (short) 1)))
                .all().get(CALL.toMillis(), TimeUnit.MILLISECONDS);
    }

    static <T> T get(org.apache.kafka.common.KafkaFuture<T> f) throws Exception {
        return f.get(CALL.toMillis(), TimeUnit.MILLISECONDS);
    }
}
