package samsa.it;

import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.AlterConfigOp.OpType;
import org.apache.kafka.clients.admin.AlterConfigsOptions;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConfigEntry.ConfigSource;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.ConsumerGroupListing;
import org.apache.kafka.clients.admin.CreatePartitionsOptions;
import org.apache.kafka.clients.admin.CreateTopicsOptions;
import org.apache.kafka.clients.admin.CreateTopicsResult;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.GroupListing;
import org.apache.kafka.clients.admin.ListGroupsOptions;
import org.apache.kafka.clients.admin.ListOffsetsResult.ListOffsetsResultInfo;
import org.apache.kafka.clients.admin.ListTopicsOptions;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.QuorumInfo;
import org.apache.kafka.clients.admin.RaftVoterEndpoint;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.admin.TopicListing;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.GroupType;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicCollection;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.GroupIdNotFoundException;
import org.apache.kafka.common.errors.GroupNotEmptyException;
import org.apache.kafka.common.errors.InvalidConfigurationException;
import org.apache.kafka.common.errors.InvalidPartitionsException;
import org.apache.kafka.common.errors.InvalidReplicationFactorException;
import org.apache.kafka.common.errors.InvalidTopicException;
import org.apache.kafka.common.errors.OffsetOutOfRangeException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownMemberIdException;
import org.apache.kafka.common.errors.UnknownTopicIdException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The Admin client: topics, configs, partitions, cluster, offsets, records and groups. */
class AdminTest extends BrokerTestBase {
    @BeforeAll
    static void start() throws Exception {
        startBroker(Map.of("group.initial.rebalance.delay.ms", "0"));
    }

    /** Fails unless the future fails with {@code type} (the cause of the ExecutionException). */
    private static void expectFailure(Class<? extends Throwable> type, KafkaFuture<?> f, String what) {
        ExecutionException e = assertThrows(ExecutionException.class,
                () -> f.get(CALL.toMillis(), TimeUnit.MILLISECONDS), what + " should fail with " + type.getSimpleName());
        assertInstanceOf(type, e.getCause(), what + ": " + e.getCause());
    }

    private static NewTopic topic(String name, int partitions) {
        return new NewTopic(name, partitions, (short) 1);
    }

    private void produceTo(String topic, int partition, int n) throws Exception {
        KafkaProducer<String, String> producer = producer();
        for (int i = 0; i < n; i++) {
            producer.send(new ProducerRecord<>(topic, partition, "k" + i, "v" + i));
        }
        producer.flush();
    }

    private static Config describeConfig(Admin admin, ConfigResource res) throws Exception {
        return get(admin.describeConfigs(List.of(res)).all()).get(res);
    }

    @Test
    @Timeout(60)
    void createTopicsValidAndInvalid() throws Exception {
        Admin admin = admin();
        CreateTopicsResult r = admin.createTopics(List.of(
                topic("admin-created", 3).configs(Map.of("retention.ms", "3600000")),
                new NewTopic("admin-broker-defaults", Optional.empty(), Optional.empty())));
        get(r.all());
        assertEquals(3, get(r.numPartitions("admin-created")));
        assertEquals(1, get(r.replicationFactor("admin-created")));
        assertNotEquals(Uuid.ZERO_UUID, get(r.topicId("admin-created")));
        assertEquals("3600000", get(r.config("admin-created")).get("retention.ms").value());
        assertEquals(1, get(r.numPartitions("admin-broker-defaults")), "num.partitions=1 from server.properties");

        CreateTopicsResult v = admin.createTopics(List.of(topic("admin-validate-only", 2)),
                new CreateTopicsOptions().validateOnly(true));
        get(v.all());
        assertEquals(2, get(v.numPartitions("admin-validate-only")));

        assertAll(
                () -> expectFailure(TopicExistsException.class,
                        admin.createTopics(List.of(topic("admin-created", 1))).all(), "an existing name"),
                () -> expectFailure(InvalidTopicException.class,
                        admin.createTopics(List.of(topic("bad name!", 1))).all(), "a name with illegal characters"),
                () -> expectFailure(InvalidTopicException.class,
                        admin.createTopics(List.of(topic("x".repeat(250), 1))).all(), "a name of 250 characters"),
                () -> expectFailure(InvalidPartitionsException.class,
                        admin.createTopics(List.of(topic("admin-zero-partitions", 0))).all(), "0 partitions"),
                () -> expectFailure(InvalidReplicationFactorException.class,
                        admin.createTopics(List.of(new NewTopic("admin-rf3", 1, (short) 3))).all(),
                        "replication factor 3 on one broker"),
                () -> expectFailure(InvalidConfigurationException.class,
                        admin.createTopics(List.of(topic("admin-bad-value", 1)
                                .configs(Map.of("cleanup.policy", "bogus")))).all(), "cleanup.policy=bogus"),
                () -> expectFailure(InvalidConfigurationException.class,
                        admin.createTopics(List.of(topic("admin-unknown-config", 1)
                                .configs(Map.of("no.such.config", "1")))).all(), "an unknown config name"));

        Set<String> names = get(admin.listTopics().names());
        assertTrue(names.containsAll(Set.of("admin-created", "admin-broker-defaults")), names.toString());
        for (String absent : List.of("admin-validate-only", "bad name!", "admin-zero-partitions", "admin-rf3",
                "admin-bad-value", "admin-unknown-config")) {
            assertFalse(names.contains(absent), absent + " must not have been created: " + names);
        }
    }

    @Test
    @Timeout(60)
    void listAndDescribeTopics() throws Exception {
        Admin admin = admin();
        CreateTopicsResult r = admin.createTopics(List.of(topic("admin-describe", 3)));
        get(r.all());
        Uuid id = get(r.topicId("admin-describe"));

        Set<String> names = get(admin.listTopics().names());
        assertTrue(names.contains("admin-describe"), names.toString());
        assertFalse(names.contains("__consumer_offsets"), "internal topics are not listed by default");
        Map<String, TopicListing> all = get(admin.listTopics(new ListTopicsOptions().listInternal(true)).namesToListings());
        assertTrue(all.containsKey("__consumer_offsets"), all.keySet().toString());
        assertTrue(all.get("__consumer_offsets").isInternal());
        assertFalse(all.get("admin-describe").isInternal());
        assertEquals(id, all.get("admin-describe").topicId());

        TopicDescription d = get(admin.describeTopics(List.of("admin-describe")).allTopicNames()).get("admin-describe");
        assertEquals("admin-describe", d.name());
        assertEquals(id, d.topicId());
        assertFalse(d.isInternal());
        assertEquals(3, d.partitions().size());
        for (int p = 0; p < 3; p++) {
            TopicPartitionInfo info = d.partitions().get(p);
            assertEquals(p, info.partition());
            assertEquals(1, info.leader().id(), "leader of partition " + p);
            assertEquals(List.of(1), info.replicas().stream().map(Node::id).collect(Collectors.toList()));
            assertEquals(List.of(1), info.isr().stream().map(Node::id).collect(Collectors.toList()));
        }


        expectFailure(UnknownTopicOrPartitionException.class,
                admin.describeTopics(List.of("admin-no-such-topic")).allTopicNames(), "describing a missing topic");
    }

    @Test
    @Timeout(60)
    void describeTopicsById() throws Exception {
        Admin admin = admin();
        CreateTopicsResult r = admin.createTopics(List.of(topic("admin-describe-by-id", 2)));
        get(r.all());
        Uuid id = get(r.topicId("admin-describe-by-id"));
        TopicDescription d = get(admin.describeTopics(TopicCollection.ofTopicIds(List.of(id))).allTopicIds()).get(id);
        assertEquals("admin-describe-by-id", d.name());
        assertEquals(id, d.topicId());
        assertEquals(2, d.partitions().size());
        expectFailure(UnknownTopicIdException.class,
                admin.describeTopics(TopicCollection.ofTopicIds(List.of(Uuid.randomUuid()))).allTopicIds(),
                "describing an unknown topic id");
    }

    @Test
    @Timeout(60)
    void describeTopicAndBrokerConfigs() throws Exception {
        Admin admin = admin();
        get(admin.createTopics(List.of(topic("admin-configs", 1).configs(Map.of("retention.ms", "3600000")))).all());

        Config t = describeConfig(admin, new ConfigResource(ConfigResource.Type.TOPIC, "admin-configs"));
        ConfigEntry retention = t.get("retention.ms");
        assertEquals("3600000", retention.value());
        assertEquals(ConfigSource.DYNAMIC_TOPIC_CONFIG, retention.source());
        assertFalse(retention.isDefault());
        ConfigEntry cleanup = t.get("cleanup.policy");
        assertNotNull(cleanup, "cleanup.policy is described");
        assertEquals("delete", cleanup.value());
        assertEquals(ConfigSource.DEFAULT_CONFIG, cleanup.source());
        // Set in server.properties (log.segment.bytes): a static broker config.
        ConfigEntry segment = t.get("segment.bytes");
        assertNotNull(segment, "segment.bytes is described");
        assertEquals("1073741824", segment.value());
        assertEquals(ConfigSource.STATIC_BROKER_CONFIG, segment.source());

        Config b = describeConfig(admin, new ConfigResource(ConfigResource.Type.BROKER, "1"));
        assertNotNull(b.get("num.partitions"), "num.partitions is described: " + b.entries());
        assertEquals("1", b.get("num.partitions").value());
        assertEquals(ConfigSource.STATIC_BROKER_CONFIG, b.get("num.partitions").source());
        assertEquals("168", b.get("log.retention.hours").value());
        assertEquals("true", b.get("auto.create.topics.enable").value());
        assertEquals(broker.dataDir().toString(), b.get("log.dirs").value());

        expectFailure(UnknownTopicOrPartitionException.class,
                admin.describeConfigs(List.of(new ConfigResource(ConfigResource.Type.TOPIC, "admin-no-such-topic"))).all(),
                "configs of a missing topic");
    }

    @Test
    @Timeout(60)
    void incrementalAlterConfigs() throws Exception {
        Admin admin = admin();
        String topic = "admin-alter";
        get(admin.createTopics(List.of(topic(topic, 1).configs(Map.of("retention.ms", "3600000")))).all());
        ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, topic);

        get(admin.incrementalAlterConfigs(Map.of(res, List.of(
                new AlterConfigOp(new ConfigEntry("retention.bytes", "1048576"), OpType.SET),
                new AlterConfigOp(new ConfigEntry("retention.ms", ""), OpType.DELETE)))).all());
        Config c = describeConfig(admin, res);
        assertEquals("1048576", c.get("retention.bytes").value());
        assertEquals(ConfigSource.DYNAMIC_TOPIC_CONFIG, c.get("retention.bytes").source());
        assertEquals("604800000", c.get("retention.ms").value(), "retention.ms back to log.retention.hours=168");
        assertNotEquals(ConfigSource.DYNAMIC_TOPIC_CONFIG, c.get("retention.ms").source());

        // validateOnly changes nothing.
        get(admin.incrementalAlterConfigs(Map.of(res, List.of(
                new AlterConfigOp(new ConfigEntry("retention.bytes", "5"), OpType.SET))),
                new AlterConfigsOptions().validateOnly(true)).all());
        assertEquals("1048576", describeConfig(admin, res).get("retention.bytes").value());

        // List-valued configs: APPEND and SUBTRACT.
        get(admin.incrementalAlterConfigs(Map.of(res, List.of(
                new AlterConfigOp(new ConfigEntry("cleanup.policy", "compact"), OpType.APPEND)))).all());
        assertEquals(Set.of("delete", "compact"),
                Set.of(describeConfig(admin, res).get("cleanup.policy").value().split(",")));
        get(admin.incrementalAlterConfigs(Map.of(res, List.of(
                new AlterConfigOp(new ConfigEntry("cleanup.policy", "delete"), OpType.SUBTRACT)))).all());
        assertEquals("compact", describeConfig(admin, res).get("cleanup.policy").value());

        assertAll(
                () -> expectFailure(InvalidConfigurationException.class,
                        admin.incrementalAlterConfigs(Map.of(res, List.of(new AlterConfigOp(
                                new ConfigEntry("no.such.config", "1"), OpType.SET)))).all(), "an unknown name"),
                () -> expectFailure(InvalidConfigurationException.class,
                        admin.incrementalAlterConfigs(Map.of(res, List.of(new AlterConfigOp(
                                new ConfigEntry("retention.ms", "abc"), OpType.SET)))).all(), "retention.ms=abc"),
                () -> expectFailure(UnknownTopicOrPartitionException.class,
                        admin.incrementalAlterConfigs(Map.of(
                                new ConfigResource(ConfigResource.Type.TOPIC, "admin-no-such-topic"),
                                List.of(new AlterConfigOp(new ConfigEntry("retention.ms", "1000"), OpType.SET)))).all(),
                        "a missing topic"));
        assertEquals("1048576", describeConfig(admin, res).get("retention.bytes").value(), "failed alters change nothing");
    }

    @Test
    @Timeout(60)
    void createPartitions() throws Exception {
        Admin admin = admin();
        String topic = "admin-partitions";
        get(admin.createTopics(List.of(topic(topic, 2))).all());

        get(admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(3)),
                new CreatePartitionsOptions().validateOnly(true)).all());
        assertEquals(2, get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic).partitions().size(),
                "validateOnly adds nothing");

        get(admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(5))).all());
        assertEquals(5, get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic).partitions().size());
        // The new partitions take records.
        KafkaProducer<String, String> producer = producer();
        assertEquals(0, producer.send(new ProducerRecord<>(topic, 4, "k", "v")).get(30, TimeUnit.SECONDS).offset());

        assertAll(
                () -> expectFailure(InvalidPartitionsException.class,
                        admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(3))).all(), "fewer partitions"),
                () -> expectFailure(InvalidPartitionsException.class,
                        admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(5))).all(), "the same count"),
                () -> expectFailure(UnknownTopicOrPartitionException.class,
                        admin.createPartitions(Map.of("admin-no-such-topic", NewPartitions.increaseTo(5))).all(),
                        "a missing topic"));
    }

    @Test
    @Timeout(60)
    void describeCluster() throws Exception {
        Admin admin = admin();
        DescribeClusterResult r = admin.describeCluster();
        Collection<Node> nodes = get(r.nodes());
        assertEquals(1, nodes.size(), nodes.toString());
        Node n = nodes.iterator().next();
        assertEquals(1, n.id());
        assertEquals("127.0.0.1", n.host());
        assertEquals(broker.port(), n.port());
        assertEquals(1, get(r.controller()).id());
        String clusterId = get(r.clusterId());
        assertNotNull(clusterId);
        assertFalse(clusterId.isEmpty());
        assertEquals(clusterId, get(admin.describeCluster().clusterId()), "the cluster id is stable");
    }

    /** DescribeQuorum: this node leads its one-voter metadata quorum; every metadata change
     *  is one entry of its log, so creating topics moves the high watermark by one each. */
    @Test
    @Timeout(60)
    void describeMetadataQuorum() throws Exception {
        Admin admin = admin();
        long before = System.currentTimeMillis();
        QuorumInfo q = get(admin.describeMetadataQuorum().quorumInfo());
        long after = System.currentTimeMillis();
        assertEquals(1, q.leaderId(), q.toString());
        assertTrue(q.leaderEpoch() >= 1, q.toString());
        // At least the founders' configuration, the leader's first entry, this broker's
        // registration and __consumer_offsets.
        assertTrue(q.highWatermark() >= 4, q.toString());
        assertEquals(1, q.voters().size(), q.toString());
        QuorumInfo.ReplicaState v = q.voters().get(0);
        assertEquals(1, v.replicaId());
        assertEquals(Uuid.ZERO_UUID, v.replicaDirectoryId(), "a static voter has no directory id");
        assertEquals(q.highWatermark(), v.logEndOffset(), "the leader is caught up");
        for (long t : List.of(v.lastFetchTimestamp().orElseThrow(), v.lastCaughtUpTimestamp().orElseThrow())) {
            assertTrue(before <= t && t <= after, "the leader reports the time of the answer: " + q);
        }
        assertEquals(List.of(), q.observers());
        assertEquals(Set.of(1), q.nodes().keySet(), q.toString());
        assertEquals(List.of(new RaftVoterEndpoint("PLAINTEXT", "127.0.0.1", broker.port())),
                q.nodes().get(1).endpoints());

        createTopic(admin, "admin-quorum-a", 1);
        createTopic(admin, "admin-quorum-b", 3);
        QuorumInfo q2 = get(admin.describeMetadataQuorum().quorumInfo());
        assertEquals(q.highWatermark() + 2, q2.highWatermark(), q + " then " + q2);
        assertEquals(q2.highWatermark(), q2.voters().get(0).logEndOffset());
        assertEquals(q.leaderEpoch(), q2.leaderEpoch());
    }

    @Test
    @Timeout(60)
    void listOffsetsBySpec() throws Exception {
        Admin admin = admin();
        String topic = "admin-offsets";
        get(admin.createTopics(List.of(topic(topic, 1))).all());
        TopicPartition tp = new TopicPartition(topic, 0);

        // Ten records a second apart, in the past, except record 6 which is 50 s later.
        long base = System.currentTimeMillis() - 100_000;
        long[] ts = new long[10];
        KafkaProducer<String, String> producer = producer();
        for (int i = 0; i < 10; i++) {
            ts[i] = i == 6 ? base + 50_000 : base + i * 1000L;
            producer.send(new ProducerRecord<>(topic, 0, ts[i], "k" + i, "v" + i));
        }
        producer.flush();

        Map<String, OffsetSpec> specs = new HashMap<>();
        specs.put("earliest", OffsetSpec.earliest());
        specs.put("latest", OffsetSpec.latest());
        specs.put("forTimestamp(base+2500)", OffsetSpec.forTimestamp(base + 2500));
        specs.put("forTimestamp(base+6000)", OffsetSpec.forTimestamp(base + 6000));
        specs.put("forTimestamp(base)", OffsetSpec.forTimestamp(base));
        specs.put("forTimestamp(after all)", OffsetSpec.forTimestamp(base + 60_000));
        Map<String, ListOffsetsResultInfo> got = new HashMap<>();
        for (Map.Entry<String, OffsetSpec> e : specs.entrySet()) {
            got.put(e.getKey(), get(admin.listOffsets(Map.of(tp, e.getValue())).partitionResult(tp)));
        }
        assertAll(
                () -> assertEquals(0, got.get("earliest").offset(), "earliest"),
                () -> assertEquals(10, got.get("latest").offset(), "latest"),
                () -> assertEquals(3, got.get("forTimestamp(base+2500)").offset(), "forTimestamp(base+2500)"),
                () -> assertEquals(ts[3], got.get("forTimestamp(base+2500)").timestamp()),
                () -> assertEquals(6, got.get("forTimestamp(base+6000)").offset(),
                        "first offset whose timestamp is at least base+6000"),
                () -> assertEquals(0, got.get("forTimestamp(base)").offset(), "forTimestamp(base)"),
                () -> assertEquals(-1, got.get("forTimestamp(after all)").offset(), "no record that late"));
    }

    /** OffsetSpec.maxTimestamp(): the offset and timestamp of the record with the largest timestamp. */
    @Test
    @Timeout(60)
    void listOffsetsMaxTimestamp() throws Exception {
        Admin admin = admin();
        String topic = "admin-max-timestamp";
        get(admin.createTopics(List.of(topic(topic, 1))).all());
        TopicPartition tp = new TopicPartition(topic, 0);
        long base = System.currentTimeMillis() - 100_000;
        KafkaProducer<String, String> producer = producer();
        for (int i = 0; i < 10; i++) {
            producer.send(new ProducerRecord<>(topic, 0, i == 6 ? base + 50_000 : base + i * 1000L, "k" + i, "v" + i));
        }
        producer.flush();
        ListOffsetsResultInfo info = get(admin.listOffsets(Map.of(tp, OffsetSpec.maxTimestamp())).partitionResult(tp));
        assertEquals(base + 50_000, info.timestamp(), "the largest timestamp");
        assertEquals(6, info.offset(), "the offset of the record that has it (not its batch's last offset)");
    }

    @Test
    @Timeout(60)
    void deleteRecordsMovesEarliestOffset() throws Exception {
        Admin admin = admin();
        String topic = "admin-delete-records";
        get(admin.createTopics(List.of(topic(topic, 1))).all());
        TopicPartition tp = new TopicPartition(topic, 0);
        produceTo(topic, 0, 20);

        assertEquals(7, get(admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(7))).lowWatermarks().get(tp))
                .lowWatermark());
        assertEquals(7, get(admin.listOffsets(Map.of(tp, OffsetSpec.earliest())).partitionResult(tp)).offset());
        assertEquals(20, get(admin.listOffsets(Map.of(tp, OffsetSpec.latest())).partitionResult(tp)).offset());

        KafkaConsumer<String, String> consumer = consumer(null, Map.of());
        consumer.assign(List.of(tp));
        consumer.seekToBeginning(List.of(tp));
        assertEquals(7, consumer.position(tp, CALL), "a consumer starts at the new log start");
        ConsumerRecord<String, String> first = null;
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (first == null && System.nanoTime() < deadline) {
            for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                first = first == null ? r : first;
            }
        }
        assertNotNull(first, "no record after the deleted ones");
        assertEquals(7, first.offset());
        assertEquals("v7", first.value());

        expectFailure(OffsetOutOfRangeException.class,
                admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(25))).all(), "deleting past the end");
        assertEquals(7, get(admin.listOffsets(Map.of(tp, OffsetSpec.earliest())).partitionResult(tp)).offset());
        // -1 means "up to the high watermark".
        assertEquals(20, get(admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(-1))).lowWatermarks().get(tp))
                .lowWatermark());
        assertEquals(20, get(admin.listOffsets(Map.of(tp, OffsetSpec.earliest())).partitionResult(tp)).offset());
    }

    @Test
    @Timeout(120)
    @SuppressWarnings("removal") // listConsumerGroups(): deprecated in 4.x, still the call many tools use
    void consumerGroupAdministration() throws Exception {
        Admin admin = admin();
        String topic = "admin-groups";
        String group = "admin-g1";
        get(admin.createTopics(List.of(topic(topic, 2))).all());
        TopicPartition p0 = new TopicPartition(topic, 0);
        TopicPartition p1 = new TopicPartition(topic, 1);
        produceTo(topic, 0, 10);
        produceTo(topic, 1, 10);

        KafkaConsumer<String, String> consumer = consumer(group, Map.of(ConsumerConfig.CLIENT_ID_CONFIG, "admin-g1-client"));
        consumer.subscribe(List.of(topic));
        int seen = 0;
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (seen < 20) {
            assertTrue(System.nanoTime() < deadline, "consumed only " + seen + " of 20");
            seen += consumer.poll(Duration.ofMillis(200)).count();
        }
        consumer.commitSync(CALL);

        // While the member is active.
        Collection<ConsumerGroupListing> listed = get(admin.listConsumerGroups().all());
        ConsumerGroupListing listing = listed.stream().filter(l -> l.groupId().equals(group)).findFirst()
                .orElseThrow(() -> new AssertionError(group + " not in listConsumerGroups: " + listed));
        assertEquals(Optional.of(GroupState.STABLE), listing.groupState());
        Collection<GroupListing> groups = get(admin.listGroups(ListGroupsOptions.forConsumerGroups()).all());
        GroupListing gl = groups.stream().filter(l -> l.groupId().equals(group)).findFirst()
                .orElseThrow(() -> new AssertionError(group + " not in listGroups: " + groups));
        assertEquals(Optional.of(GroupType.CLASSIC), gl.type());
        assertEquals("consumer", gl.protocol());

        ConsumerGroupDescription d = get(admin.describeConsumerGroups(List.of(group)).describedGroups().get(group));
        assertEquals(GroupState.STABLE, d.groupState());
        assertEquals(GroupType.CLASSIC, d.type());
        assertFalse(d.isSimpleConsumerGroup());
        assertEquals(1, d.coordinator().id());
        assertEquals(1, d.members().size(), d.members().toString());
        MemberDescription m = d.members().iterator().next();
        assertEquals("admin-g1-client", m.clientId());
        assertEquals(Set.of(p0, p1), m.assignment().topicPartitions());
        assertFalse(d.partitionAssignor().isEmpty(), "the group's assignor is named");

        assertAll(
                () -> expectFailure(GroupNotEmptyException.class,
                        admin.deleteConsumerGroups(List.of(group)).all(), "deleting a group with a member"),
                () -> expectFailure(UnknownMemberIdException.class,
                        admin.alterConsumerGroupOffsets(group, Map.of(p0, new OffsetAndMetadata(1))).all(),
                        "altering the offsets of a group with a member"));

        consumer.close(); // the group is now empty
        d = get(admin.describeConsumerGroups(List.of(group)).describedGroups().get(group));
        assertEquals(GroupState.EMPTY, d.groupState());
        assertTrue(d.members().isEmpty());

        Map<TopicPartition, OffsetAndMetadata> offsets =
                get(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata());
        assertEquals(Map.of(p0, 10L, p1, 10L), offsetsOf(offsets));

        get(admin.alterConsumerGroupOffsets(group, Map.of(p0, new OffsetAndMetadata(3, "rewound"))).all());
        offsets = get(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata());
        assertEquals(Map.of(p0, 3L, p1, 10L), offsetsOf(offsets));
        assertEquals("rewound", offsets.get(p0).metadata());

        // A member of the group now starts partition 0 at offset 3.
        KafkaConsumer<String, String> again = consumer(group, Map.of());
        again.subscribe(List.of(topic));
        Set<Long> p0Offsets = new HashSet<>();
        deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (p0Offsets.size() < 7) {
            assertTrue(System.nanoTime() < deadline, "re-read only " + p0Offsets);
            for (ConsumerRecord<String, String> r : again.poll(Duration.ofMillis(200))) {
                assertEquals(0, r.partition(), "partition 1 has nothing after its committed offset");
                assertTrue(p0Offsets.add(r.offset()), "offset " + r.offset() + " twice");
            }
        }
        assertEquals(Set.of(3L, 4L, 5L, 6L, 7L, 8L, 9L), p0Offsets);
        again.close();

        get(admin.deleteConsumerGroupOffsets(group, Set.of(p1)).all());
        offsets = get(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata());
        assertEquals(Map.of(p0, 3L), offsetsOf(offsets), "partition 1's offset is gone");

        get(admin.deleteConsumerGroups(List.of(group)).all());
        Collection<ConsumerGroupListing> after = get(admin.listConsumerGroups().all());
        assertTrue(after.stream().noneMatch(l -> l.groupId().equals(group)), "deleted group still listed: " + after);
        expectFailure(GroupIdNotFoundException.class,
                admin.deleteConsumerGroups(List.of("admin-no-such-group")).all(), "deleting a missing group");
    }

    /** Partition -> offset, leaving out partitions without one (null entries). */
    private static Map<TopicPartition, Long> offsetsOf(Map<TopicPartition, OffsetAndMetadata> m) {
        Map<TopicPartition, Long> out = new HashMap<>();
        m.forEach((tp, om) -> {
            if (om != null) {
                out.put(tp, om.offset());
            }
        });
        return out;
    }

    @Test
    @Timeout(60)
    void deleteTopics() throws Exception {
        Admin admin = admin();
        String topic = "admin-delete-me";
        get(admin.createTopics(List.of(topic(topic, 2))).all());
        produceTo(topic, 1, 3);

        get(admin.deleteTopics(List.of(topic)).all());
        assertFalse(get(admin.listTopics().names()).contains(topic));
        expectFailure(UnknownTopicOrPartitionException.class,
                admin.describeTopics(List.of(topic)).allTopicNames(), "describing a deleted topic");
        expectFailure(UnknownTopicOrPartitionException.class,
                admin.deleteTopics(List.of(topic)).all(), "deleting it again");

        // The name can be used again, for a new, empty topic.
        get(admin.createTopics(List.of(topic(topic, 1))).all());
        TopicPartition tp = new TopicPartition(topic, 0);
        assertEquals(0, get(admin.listOffsets(Map.of(tp, OffsetSpec.latest())).partitionResult(tp)).offset());
    }
}
