// Transactions with the Kafka Java client (issue #17's benchmark, transaction version 2
// where the broker advertises it): one producer, TXNS transactions of PER records of
// SIZE bytes each to TOPIC, one after another, acks=all. Prints one line in `samsa bench`'s
// key=value form for bench/run.sh: produce_MB_s (records' bytes over the whole run),
// txn_s, commit_p50_ms / commit_p99_ms (the commitTransaction call, which first flushes
// what the transaction still has in flight).
// With a sixth argument "plain" the same TXNS * PER records go from a non-transactional
// (idempotent, the client's default) producer with the same settings, flushed once at the
// end: the same client's reference for the ratio the issue asks for.
//
// Run as a single-file program: java -cp KAFKA_CLIENTS_JAR:SLF4J_API_JAR TxnBench.java
//   BOOTSTRAP TOPIC TXNS PER SIZE [plain]
import java.util.Arrays;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class TxnBench {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], topic = args[1];
        int txns = Integer.parseInt(args[2]), per = Integer.parseInt(args[3]), size = Integer.parseInt(args[4]);
        boolean plain = args.length > 5 && args[5].equals("plain");
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        if (!plain) {
            p.put("transactional.id", "txn-bench-" + ProcessHandle.current().pid());
        }
        p.put("acks", "all");
        p.put("linger.ms", "5");
        p.put("batch.size", "1048576");
        byte[] value = new byte[size];
        long[] commits = new long[txns];
        try (KafkaProducer<byte[], byte[]> producer =
                new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
            if (plain) {
                producer.send(new ProducerRecord<>(topic, null, value)).get(); // warm: metadata, producer id
                long t0 = System.nanoTime();
                AtomicLong failed = new AtomicLong();
                for (long i = 0; i < (long) txns * per; i++) {
                    producer.send(new ProducerRecord<>(topic, null, value), (md, e) -> {
                        if (e != null) {
                            failed.incrementAndGet();
                        }
                    });
                }
                producer.flush();
                double secs = (System.nanoTime() - t0) / 1e9;
                if (failed.get() > 0) {
                    throw new IllegalStateException(failed.get() + " records not acknowledged");
                }
                System.out.printf("txn_bench: produce_MB_s=%.1f%n", (double) txns * per * size / 1e6 / secs);
                return;
            }
            producer.initTransactions();
            long t0 = System.nanoTime();
            for (int t = 0; t < txns; t++) {
                producer.beginTransaction();
                for (int i = 0; i < per; i++) {
                    producer.send(new ProducerRecord<>(topic, null, value));
                }
                long c0 = System.nanoTime();
                producer.commitTransaction();
                commits[t] = System.nanoTime() - c0;
            }
            double secs = (System.nanoTime() - t0) / 1e9;
            Arrays.sort(commits);
            System.out.printf("txn_bench: produce_MB_s=%.1f txn_s=%.1f commit_p50_ms=%.2f commit_p99_ms=%.2f%n",
                    (double) txns * per * size / 1e6 / secs, txns / secs,
                    commits[txns / 2] / 1e6, commits[Math.min(txns - 1, txns * 99 / 100)] / 1e6);
        }
    }
}
