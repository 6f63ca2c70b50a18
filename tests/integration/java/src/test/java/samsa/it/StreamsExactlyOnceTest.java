package samsa.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.state.KeyValueStore;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Kafka Streams with processing.guarantee=exactly_once_v2 (issue #17): a word count whose
 * output is exact although the broker is killed with SIGKILL in the middle of it and
 * started again (same port, same data dir) under the running application.
 *
 * <p>The topology reads words, repartitions them by word (a transactional write to an
 * internal topic, read back by a second task), counts them in a store backed by a
 * compacted changelog topic, and writes every new count to the output topic. With the
 * record cache off, each input record yields exactly one output record, so exactly-once
 * has a simple, strict form: per word, the counts in the output, in offset order, are
 * 1, 2, ..., n where n is the word's number of occurrences in the input. A duplicate (a
 * transaction applied twice, or output of an aborted transaction visible to
 * read_committed) shows as a repeated or too high count; a loss (a committed transaction
 * the broker forgot, input offsets committed without their output) as a gap or a short
 * sequence.
 *
 * <p>What the crash exercises in the broker: durability of acknowledged transactional
 * writes, commit markers and offset commits across SIGKILL; recovery of the transaction
 * coordinator's state (__transaction_state) and of the partitions' producer states, so that
 * the transaction open at the crash either goes on where it was (the producer retries its
 * unacknowledged batches, which the broker must deduplicate by sequence number; this is
 * what Kafka Streams 4.4 did in our runs) or is aborted whole; the last stable offset after
 * recovery; and the group coordinator (committed offsets, rejoin) for the application.
 * A read_committed consumer follows the output across the crash too.
 */
class StreamsExactlyOnceTest extends BrokerTestBase {
    /** Per test: each has its own topics. */
    private String input = "wordcount-in";
    private String output = "wordcount-out";
    private static final int PARTITIONS = 3;
    /** Input records: a few hundred thousand, small enough for a 2-core machine. */
    private static final int RECORDS = 200_000;
    private static final int VOCABULARY = 500;
    /** The crash comes once this share of the output is visible to read_committed. */
    private static final int CRASH_AFTER_OUTPUT = RECORDS / 4;
    /** The broker stays down this long: less than the transaction timeout. */
    private static final Duration DOWN_TIME = Duration.ofMillis(1500);
    /** In the timeout case: the application's transaction timeout, and a down time past it. */
    private static final int SHORT_TXN_TIMEOUT_MS = 2000;
    private static final Duration LONG_DOWN_TIME = Duration.ofMillis(3500);
    /** From the start of the application until the crash. */
    private static final Duration PROGRESS_BOUND = Duration.ofSeconds(60);
    /** From the restart until all input is processed and its output read. */
    private static final Duration DRAIN_BOUND = Duration.ofSeconds(90);

    @TempDir
    Path stateDir;

    @BeforeAll
    static void start() throws Exception {
        // Timed-out transactions are looked for often, so that the timeout case's abort
        // comes soon after the restart.
        startBroker(Map.of("transaction.abort.timed.out.transaction.cleanup.interval.ms", "200"));
    }

    /** The transaction open at the crash goes on after the restart (down less than its
     *  timeout): the producer resends what was not acknowledged. */
    @Test
    @Timeout(180)
    void wordCountIsExactAcrossBrokerCrash() throws Exception {
        wordCountAcrossCrash("", DOWN_TIME, Map.of());
    }

    /** The broker is down longer than the application's transaction timeout: the restarted
     *  coordinator aborts the open transaction and fences its producer (epoch bumped), and
     *  Kafka Streams must recover from that (a new producer, the task's state restored from
     *  its changelog, input read again from the committed offsets). */
    @Test
    @Timeout(180)
    void wordCountIsExactWhenTheCrashOutlivesTheTransaction() throws Exception {
        wordCountAcrossCrash("-timeout", LONG_DOWN_TIME, Map.of(
                StreamsConfig.producerPrefix(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG), SHORT_TXN_TIMEOUT_MS));
    }

    private void wordCountAcrossCrash(String suffix, Duration downTime, Map<String, Object> extraConfig)
            throws Exception {
        input = "wordcount-in" + suffix;
        output = "wordcount-out" + suffix;
        Admin admin = admin();
        createTopic(admin, input, PARTITIONS);
        createTopic(admin, output, PARTITIONS);
        long t0 = System.nanoTime();
        Map<String, Integer> expected = produceInput();
        long tProduced = System.nanoTime();

        // A fresh application.id: a fresh consumer group, transactional ids and internal
        // topics, whatever an earlier run left.
        String appId = "wordcount-eos-" + System.currentTimeMillis();
        AtomicReference<Throwable> streamsError = new AtomicReference<>();
        Properties config = streamsConfig(appId);
        config.putAll(extraConfig);
        KafkaStreams streams = new KafkaStreams(topology(), config);
        // No REPLACE_THREAD: a stream thread that dies of the crash is a failure to report,
        // not to paper over. The state listener makes the test fail fast on it.
        streams.setUncaughtExceptionHandler(e -> {
            streamsError.compareAndSet(null, e);
            return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        streams.setStateListener((now, before) ->
                System.err.println("streams " + appId + ": " + before + " -> " + now));
        try {
            streams.start();

            // Follows the output as it is committed; the crash comes once a quarter is
            // visible, so that it hits the application in mid-stream.
            KafkaConsumer<String, String> live = outputReader();
            long seen = 0;
            long deadline = System.nanoTime() + PROGRESS_BOUND.toNanos();
            while (seen < CRASH_AFTER_OUTPUT) {
                checkStreams(streams, streamsError);
                assertTrue(System.nanoTime() < deadline,
                        "only " + seen + " output records within " + PROGRESS_BOUND + " of the start");
                seen += live.poll(Duration.ofMillis(100)).count();
            }
            assertTrue(seen < RECORDS, "the application was done before the crash: nothing tested");
            long tCrash = System.nanoTime();
            broker.crash();
            Thread.sleep(downTime.toMillis());
            broker.restart();
            long seenAtCrash = seen;

            // Done when the application's group has committed all input as consumed (its
            // offsets equal the input's end offsets: nothing is left to process, nothing will
            // be processed again) and the output holds at least one record per input record.
            // More than that would be duplicates, which the full read below counts.
            Map<TopicPartition, Long> inputEnds = endOffsets(input);
            deadline = System.nanoTime() + DRAIN_BOUND.toNanos();
            long nextOffsetCheck = 0;
            Map<TopicPartition, Long> committed = Map.of();
            while (seen < RECORDS || !committed.equals(inputEnds)) {
                checkStreams(streams, streamsError);
                assertTrue(System.nanoTime() < deadline, "within " + DRAIN_BOUND + " of the restart: "
                        + seen + " of " + RECORDS + " output records; group offsets " + committed
                        + ", input end offsets " + inputEnds);
                seen += live.poll(Duration.ofMillis(100)).count();
                if (System.nanoTime() > nextOffsetCheck) {
                    committed = committedOffsets(admin, appId);
                    nextOffsetCheck = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(250);
                }
            }
            long tDrained = System.nanoTime();
            assertTrue(streams.close(Duration.ofSeconds(30)), "KafkaStreams did not close within 30 s");
            checkStreamsError(streamsError);

            verifyOutput(expected);
            System.err.printf("streams EOS: %d records produced in %d ms; crash after %d output records "
                            + "(%d ms after start); all output %d ms after the restart; %d ms in all%n",
                    RECORDS, ms(tProduced - t0), seenAtCrash, ms(tCrash - tProduced),
                    ms(tDrained - tCrash) - downTime.toMillis(), ms(System.nanoTime() - t0));
        } finally {
            // Bounded; the state dir goes with @TempDir.
            if (!streams.close(Duration.ofSeconds(10))) {
                System.err.println("KafkaStreams " + appId + " did not close within 10 s");
            }
        }
    }

    /**
     * Writes RECORDS words to the input topic, round-robin over its partitions, with an
     * idempotent producer (the client's default): no duplicates at the source, so the input
     * counts are exactly the ones computed here. The words come from a fixed-seed generator
     * with a skew (a few words are frequent, many rare), as in text.
     */
    private Map<String, Integer> produceInput() throws Exception {
        KafkaProducer<String, String> p = producer(Map.of(
                ProducerConfig.LINGER_MS_CONFIG, "10",
                ProducerConfig.BATCH_SIZE_CONFIG, "131072"));
        Random rnd = new Random(17);
        Map<String, Integer> counts = new HashMap<>();
        AtomicReference<Exception> sendError = new AtomicReference<>();
        for (int i = 0; i < RECORDS; i++) {
            int idx = (int) ((long) rnd.nextInt(VOCABULARY) * rnd.nextInt(VOCABULARY) / VOCABULARY);
            String word = String.format("w%04d", idx);
            counts.merge(word, 1, Integer::sum);
            p.send(new ProducerRecord<>(input, i % PARTITIONS, null, word), (md, e) -> {
                if (e != null) {
                    sendError.compareAndSet(null, e);
                }
            });
        }
        p.flush();
        if (sendError.get() != null) {
            throw new AssertionError("producing the input failed", sendError.get());
        }
        Map<TopicPartition, Long> ends = endOffsets(input);
        assertEquals(RECORDS, ends.values().stream().mapToLong(Long::longValue).sum(), "input end offsets " + ends);
        return counts;
    }

    private org.apache.kafka.streams.Topology topology() {
        StreamsBuilder b = new StreamsBuilder();
        b.stream(input, Consumed.with(Serdes.String(), Serdes.String()))
                .groupBy((key, word) -> word, Grouped.with("words", Serdes.String(), Serdes.String()))
                .count(Materialized.<String, Long, KeyValueStore<Bytes, byte[]>>as("counts")
                        .withKeySerde(Serdes.String()).withValueSerde(Serdes.Long()))
                .toStream()
                .mapValues(n -> Long.toString(n))
                .to(output, Produced.with(Serdes.String(), Serdes.String()));
        return b.build();
    }

    private Properties streamsConfig(String appId) {
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap());
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        // No record cache: every input record yields one output record (see the class comment).
        p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
        // Many small transactions: many commits before and after the crash, and one open
        // when it comes.
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
        p.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, 1);
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
        p.put(StreamsConfig.STATE_DIR_CONFIG, stateDir.toString());
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
        return p;
    }

    /** A read_committed consumer of all output partitions from their beginning. A broker
     *  that lost committed output would move the end below its position: that must be an
     *  error (reset "none"), not a silent re-read from the start. */
    private KafkaConsumer<String, String> outputReader() {
        KafkaConsumer<String, String> c = consumer(null, Map.of(
                ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed",
                ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "none",
                ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "5000"));
        List<TopicPartition> tps = partitions(output);
        c.assign(tps);
        c.seekToBeginning(tps);
        return c;
    }

    /**
     * Reads the whole output (read_committed, up to the last stable offset, which with the
     * application closed is the end) and checks the exactly-once property: per word one
     * output partition, and counts 1..n in offset order with n its number in the input.
     */
    private void verifyOutput(Map<String, Integer> expected) {
        KafkaConsumer<String, String> c = outputReader();
        List<TopicPartition> tps = partitions(output);
        Map<TopicPartition, Long> ends = c.endOffsets(tps);
        Map<String, Long> last = new HashMap<>();
        Map<String, Integer> partitionOf = new HashMap<>();
        List<String> problems = new ArrayList<>();
        long total = 0;
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (!tps.stream().allMatch(tp -> c.position(tp) >= ends.get(tp))) {
            assertTrue(System.nanoTime() < deadline, "read only " + total + " output records within 60 s");
            for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                total++;
                String word = r.key();
                long count = Long.parseLong(r.value());
                long before = last.getOrDefault(word, 0L);
                if (count != before + 1 && problems.size() < 20) {
                    problems.add(word + ": count " + count + " after " + before + " at " + r.topic() + "-"
                            + r.partition() + "@" + r.offset() + (count <= before ? " (duplicate)" : " (gap)"));
                }
                last.put(word, count);
                Integer p = partitionOf.putIfAbsent(word, r.partition());
                if (p != null && p != r.partition() && problems.size() < 20) {
                    problems.add(word + " in partitions " + p + " and " + r.partition());
                }
            }
        }
        for (Map.Entry<String, Integer> e : expected.entrySet()) {
            long got = last.getOrDefault(e.getKey(), 0L);
            if (got != e.getValue() && problems.size() < 40) {
                problems.add(e.getKey() + ": last count " + got + ", in input " + e.getValue());
            }
        }
        if (!expected.keySet().containsAll(last.keySet())) {
            problems.add("words in the output that are not in the input");
        }
        assertEquals(List.of(), problems, "output end offsets " + ends);
        assertEquals(RECORDS, total, "output records (one per input record)");
    }

    private Map<TopicPartition, Long> committedOffsets(Admin admin, String group) throws Exception {
        Map<TopicPartition, Long> out = new HashMap<>();
        for (Map.Entry<TopicPartition, OffsetAndMetadata> e :
                get(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata()).entrySet()) {
            if (e.getKey().topic().equals(input) && e.getValue() != null) {
                out.put(e.getKey(), e.getValue().offset());
            }
        }
        return out;
    }

    private Map<TopicPartition, Long> endOffsets(String topic) {
        KafkaConsumer<String, String> c = consumer(null, Map.of());
        return new HashMap<>(c.endOffsets(partitions(topic)));
    }

    private static List<TopicPartition> partitions(String topic) {
        List<TopicPartition> tps = new ArrayList<>();
        for (int p = 0; p < PARTITIONS; p++) {
            tps.add(new TopicPartition(topic, p));
        }
        return tps;
    }

    /** Fails at once when the application died, rather than at the deadline. */
    private static void checkStreams(KafkaStreams streams, AtomicReference<Throwable> error) {
        checkStreamsError(error);
        KafkaStreams.State s = streams.state();
        if (s == KafkaStreams.State.ERROR || s == KafkaStreams.State.PENDING_ERROR
                || s == KafkaStreams.State.NOT_RUNNING || s == KafkaStreams.State.PENDING_SHUTDOWN) {
            fail("KafkaStreams is " + s);
        }
    }

    private static void checkStreamsError(AtomicReference<Throwable> error) {
        if (error.get() != null) {
            throw new AssertionError("a stream thread died", error.get());
        }
    }

    private static long ms(long nanos) {
        return TimeUnit.NANOSECONDS.toMillis(nanos);
    }
}
