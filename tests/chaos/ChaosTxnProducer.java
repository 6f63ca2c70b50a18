import java.io.BufferedOutputStream;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.errors.AuthorizationException;
import org.apache.kafka.common.errors.OutOfOrderSequenceException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.errors.TimeoutException;
import org.apache.kafka.common.errors.UnsupportedVersionException;

/**
 * chaos.py's Java transactional producer (Apache Kafka Java client, kafka-clients 4.4,
 * transaction version 2 where the brokers finalize it): transactions of PER records
 * (PREFIX%08d values numbered from 0, record k of a transaction to partition k %
 * PARTITIONS), committed one after another until its stdin says "stop" or closes. It
 * reports on stdout, one JSON object a line:
 *   {"txn":"u00000024","n":12,"outcome":"committed"}   values u00000024..u00000035
 *   {"err":"..."}                                      an error it handled
 *   {"done":true}                                      the last line
 * The outcome is "committed" (commitTransaction returned), "aborted" (abortTransaction
 * returned after an error that is not fatal) or "unknown" (a fatal error, or a commit
 * or abort that kept failing). After "unknown" the producer is closed and a new one
 * with the same transactional.id is initialized, which fences the old one and completes
 * or aborts what it left; so nothing is open when it exits.
 * Every ABORT_EVERY-th transaction (the first among them) is aborted on purpose once its
 * records are acknowledged, so that ABORT markers meet the faults too.
 * Compiled with ChaosProducer.java, whose settings and stdin watch it shares.
 * Usage: java -cp kafka-clients.jar:slf4j...:DIR ChaosTxnProducer BOOTSTRAP TOPIC PREFIX
 *   TRANSACTIONAL_ID PER PARTITIONS ABORT_EVERY
 */
public final class ChaosTxnProducer {
    private static final int ATTEMPTS = 5;

    private Properties props;
    private final PrintStream out = new PrintStream(
            new BufferedOutputStream(new FileOutputStream(FileDescriptor.out), 1 << 16), false,
            StandardCharsets.UTF_8);

    public static void main(String[] args) throws Exception {
        if (args.length != 7) {
            System.err.println(
                    "usage: ChaosTxnProducer BOOTSTRAP TOPIC PREFIX TRANSACTIONAL_ID PER PARTITIONS ABORT_EVERY");
            System.exit(2);
        }
        new ChaosTxnProducer().run(args[0], args[1], args[2], args[3], Integer.parseInt(args[4]),
                Integer.parseInt(args[5]), Integer.parseInt(args[6]));
    }

    private void run(String bootstrap, String topic, String prefix, String txnId, int per,
            int partitions, int abortEvery) throws Exception {
        props = ChaosProducer.settings(bootstrap);
        props.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txnId);
        props.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, "60000");
        props.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "60000");
        AtomicBoolean stop = ChaosProducer.stopOnStdin();

        KafkaProducer<byte[], byte[]> producer = fresh();
        for (long next = 0; !stop.get(); next += per) {
            boolean abort = (next / per) % abortEvery == 0;
            String outcome = transaction(producer, topic, prefix, next, per, partitions, abort);
            report(String.format("{\"txn\":\"%s%08d\",\"n\":%d,\"outcome\":\"%s\"}", prefix, next, per,
                    outcome));
            if (outcome.equals("unknown")) {
                producer.close(Duration.ZERO);
                producer = fresh(); // fences the old one and settles its transaction
            }
        }
        producer.close(Duration.ofSeconds(60));
        report("{\"done\":true}");
    }

    /** A producer with the transactional id, initialized; tries for up to 150 s. */
    private KafkaProducer<byte[], byte[]> fresh() {
        long deadline = System.nanoTime() + 150_000_000_000L;
        while (true) {
            KafkaProducer<byte[], byte[]> p = new KafkaProducer<>(props);
            try {
                p.initTransactions();
                return p;
            } catch (KafkaException e) {
                error("initTransactions", e);
                p.close(Duration.ZERO);
                if (System.nanoTime() > deadline)
                    throw e;
            }
        }
    }

    private String transaction(KafkaProducer<byte[], byte[]> producer, String topic, String prefix,
            long first, int per, int partitions, boolean abort) {
        try {
            producer.beginTransaction();
            for (int k = 0; k < per; k++) {
                byte[] value = String.format("%s%08d", prefix, first + k).getBytes(StandardCharsets.UTF_8);
                producer.send(new ProducerRecord<>(topic, k % partitions, null, value));
            }
            if (abort) {
                producer.flush(); // written first, so that the ABORT markers have records to end
                producer.abortTransaction();
                return "aborted";
            }
            for (int attempt = 1;; attempt++) {
                try {
                    producer.commitTransaction();
                    return "committed";
                } catch (TimeoutException e) { // may be called again, with the same outcome
                    error("commitTransaction (attempt " + attempt + ")", e);
                    if (attempt == ATTEMPTS)
                        return "unknown";
                }
            }
        } catch (ProducerFencedException | OutOfOrderSequenceException | AuthorizationException
                | UnsupportedVersionException e) {
            error("transaction (fatal)", e);
            return "unknown";
        } catch (KafkaException e) {
            error("transaction", e);
            try {
                producer.abortTransaction();
                return "aborted";
            } catch (KafkaException e2) {
                error("abortTransaction", e2);
                return "unknown";
            }
        }
    }

    private void error(String what, Exception e) {
        report(String.format("{\"err\":\"%s: %s\"}", what,
                String.valueOf(e).replace("\\", "/").replace("\"", "'").replaceAll("[\\x00-\\x1f]", " ")));
    }

    private void report(String line) {
        synchronized (out) {
            out.println(line);
            out.flush();
        }
    }
}
