import java.io.BufferedOutputStream;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * chaos.py's Java producer (Apache Kafka Java client, kafka-clients 4.4): idempotent,
 * acks=all, sending PREFIX%08d values numbered from 0 (keys k0..k63, like the librdkafka
 * producer) until its stdin says "stop" or closes; then it closes the producer, waiting
 * up to 150 s for what is in flight. It reports on stdout, one JSON object a line:
 *   {"ack":"j00000012","p":3,"o":417}     acknowledged at partition 3, offset 417
 *   {"err":"j00000013","e":"..."}         delivery failed (not acknowledged)
 *   {"sent":1234,"unfinished":0}          the last line: values 0..1233 were handed to
 *                                         send(); callbacks that never came
 * Usage: java -cp kafka-clients.jar:slf4j...:DIR ChaosProducer BOOTSTRAP TOPIC PREFIX
 */
public final class ChaosProducer {
    private static final long CLOSE_TIMEOUT_S = 150;

    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: ChaosProducer BOOTSTRAP TOPIC PREFIX");
            System.exit(2);
        }
        String topic = args[1], prefix = args[2];
        Properties props = settings(args[0]);
        props.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        props.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "120000");

        PrintStream out = new PrintStream(
                new BufferedOutputStream(new FileOutputStream(FileDescriptor.out), 1 << 16), false,
                StandardCharsets.UTF_8);
        AtomicBoolean stop = stopOnStdin();

        AtomicLong pending = new AtomicLong();
        long sent = 0;
        KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props);
        try {
            long lastFlush = System.nanoTime();
            while (!stop.get()) {
                String value = String.format("%s%08d", prefix, sent);
                byte[] key = ("k" + (sent % 64)).getBytes(StandardCharsets.UTF_8);
                sent++;
                pending.incrementAndGet();
                try {
                    producer.send(new ProducerRecord<>(topic, key, value.getBytes(StandardCharsets.UTF_8)),
                            (md, e) -> {
                                synchronized (out) {
                                    if (e == null)
                                        out.printf("{\"ack\":\"%s\",\"p\":%d,\"o\":%d}%n", value,
                                                md.partition(), md.offset());
                                    else
                                        out.printf("{\"err\":\"%s\",\"e\":\"%s\"}%n", value,
                                                json(e.toString()));
                                }
                                pending.decrementAndGet();
                            });
                } catch (RuntimeException e) { // not handed over: no callback comes
                    pending.decrementAndGet();
                    synchronized (out) {
                        out.printf("{\"err\":\"%s\",\"e\":\"%s\"}%n", value, json("send: " + e));
                    }
                }
                if (System.nanoTime() - lastFlush > 100_000_000L) {
                    synchronized (out) {
                        out.flush();
                    }
                    lastFlush = System.nanoTime();
                }
                // The librdkafka producer's pace: 1 ms a record, 20 ms every 20th.
                Thread.sleep(sent % 20 == 0 ? 20 : 1);
            }
        } finally {
            // Waits for what is in flight; after the timeout fails the rest (callbacks
            // with errors), so that every record handed over is answered.
            producer.close(Duration.ofSeconds(CLOSE_TIMEOUT_S));
            synchronized (out) {
                out.printf("{\"sent\":%d,\"unfinished\":%d}%n", sent, pending.get());
                out.flush();
            }
        }
    }

    private static String json(String s) {
        StringBuilder b = new StringBuilder(s.length() + 8);
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '"' || c == '\\')
                b.append('\\').append(c);
            else if (c < 0x20)
                b.append(String.format("\\u%04x", (int) c));
            else
                b.append(c);
        }
        return b.toString();
    }

    /** The settings both chaos producers share: acks=all, linger.ms=2, max.block.ms 30 s. */
    static Properties settings(String bootstrap) {
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        props.put(ProducerConfig.LINGER_MS_CONFIG, "2");
        props.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "30000");
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        return props;
    }

    /** Set once stdin says "stop" or closes (read by a daemon thread). */
    static AtomicBoolean stopOnStdin() {
        AtomicBoolean stop = new AtomicBoolean();
        Thread stdin = new Thread(() -> {
            try {
                int c;
                while ((c = System.in.read()) >= 0 && c != 's') {
                    // anything but "stop" (or EOF) is ignored
                }
            } catch (IOException e) {
                // as EOF
            }
            stop.set(true);
        }, "stdin");
        stdin.setDaemon(true);
        stdin.start();
        return stop;
    }
}
