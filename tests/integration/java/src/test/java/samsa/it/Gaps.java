package samsa.it;

/**
 * Known gaps: where Samsa answers the Kafka Java client differently from Kafka. Each
 * constant is the reason of a {@code @Disabled} test and says what is wrong and where; the
 * test stays in place so that removing the annotation checks a fix. To run the disabled
 * tests anyway: {@code run.sh -Djunit.jupiter.conditions.deactivate=org.junit.*DisabledCondition}.
 */
final class Gaps {
    private Gaps() {
    }

    /**
     * Admin.describeTopics(TopicCollection.ofTopicIds(...)) sends Metadata v12 with each topic
     * named by id and an EMPTY name ("" - the field's default in the Java client, not null).
     * src/server/handlers/metadata.c looks a topic up by name whenever the name is non-null,
     * so it answers INVALID_TOPIC_EXCEPTION (17) for the name "" with a zero topic id, and the
     * client throws IllegalStateException("Use errors() when managing topic using topic
     * name"). Kafka uses the topic id whenever it is non-zero (v12+) and ignores the name; an
     * unknown id is answered UNKNOWN_TOPIC_ID (100) with the id echoed and a null name.
     */
    static final String METADATA_BY_TOPIC_ID = "gap: Metadata v12 by topic id with an empty name "
            + "(Java describeTopics(ofTopicIds)) is looked up by name; see Gaps.METADATA_BY_TOPIC_ID";

    /**
     * ListOffsets with OffsetSpec.maxTimestamp() (-3) answers the last offset of the batch
     * that holds the largest timestamp (src/storage/log.c log_max_timestamp, from the
     * segment's offset_of_max_timestamp). Kafka since 3.8 (KAFKA-16310) answers the offset of
     * the record that has that timestamp (RecordBatch.offsetOfMaxTimestamp: the first record
     * of that batch whose timestamp equals the batch's max timestamp, also in compressed
     * batches; the base offset for LogAppendTime).
     */
    static final String MAX_TIMESTAMP_OFFSET = "gap: ListOffsets MAX_TIMESTAMP answers the batch's last "
            + "offset, not the record's; see Gaps.MAX_TIMESTAMP_OFFSET";
}
