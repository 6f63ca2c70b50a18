/* The Kafka error codes a client is given for storage/ and cluster/ errors, in one place
 * for the handlers and the quorum link (kept apart from dispatch, which they would
 * otherwise all call into). */
#include "server/internal.h"

int16_t kerr_from_storage(int err)
{
    switch (err) {
    case 0: return KERR_NONE;
    case STORAGE_ERR_CORRUPT:
    case STORAGE_ERR_SHORT: return KERR_CORRUPT_MESSAGE;
    case STORAGE_ERR_BAD_MAGIC: return KERR_UNSUPPORTED_FOR_MESSAGE_FORMAT;
    case STORAGE_ERR_OUT_OF_RANGE: return KERR_OFFSET_OUT_OF_RANGE;
    case STORAGE_ERR_BATCH_TOO_LARGE: return KERR_RECORD_LIST_TOO_LARGE;
    case STORAGE_ERR_OUT_OF_ORDER_SEQUENCE: return KERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
    case STORAGE_ERR_INVALID_PRODUCER_EPOCH: return KERR_INVALID_PRODUCER_EPOCH;
    default: return KERR_KAFKA_STORAGE_ERROR;
    }
}

int16_t kerr_from_cluster(int err)
{
    switch (err) {
    case CLUSTER_OK: return KERR_NONE;
    case CLUSTER_ERR_TOPIC_EXISTS: return KERR_TOPIC_ALREADY_EXISTS;
    case CLUSTER_ERR_UNKNOWN_TOPIC: return KERR_UNKNOWN_TOPIC_OR_PARTITION;
    case CLUSTER_ERR_INVALID_TOPIC: return KERR_INVALID_TOPIC_EXCEPTION;
    case CLUSTER_ERR_INVALID_PARTITIONS: return KERR_INVALID_PARTITIONS;
    case CLUSTER_ERR_INVALID_REPLICATION: return KERR_INVALID_REPLICATION_FACTOR;
    case CLUSTER_ERR_INVALID_CONFIG: return KERR_INVALID_CONFIG;
    case CLUSTER_ERR_LIMIT: return KERR_POLICY_VIOLATION;
    case CLUSTER_ERR_NOT_CONTROLLER: return KERR_NOT_CONTROLLER;
    case CLUSTER_ERR_STALE_BROKER_EPOCH: return KERR_STALE_BROKER_EPOCH;
    case CLUSTER_ERR_INVALID_ASSIGNMENT: return KERR_INVALID_REPLICA_ASSIGNMENT;
    default: return KERR_KAFKA_STORAGE_ERROR;
    }
}
