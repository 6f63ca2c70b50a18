/*
 * proto: the Kafka wire protocol. Message structs and their codecs are
 * generated at build time by gen/protogen.py from the schema files in
 * schema/ (one per API; the format is documented at the top of protogen.py);
 * this header adds the request/response headers, the API version table and
 * Kafka's error codes. Supported versions: docs/compatibility.md.
 *
 * Generated API (see proto/proto_gen.h in the build tree):
 *
 *   Naming. Kafka's FooRequest / FooResponse become `struct foo_request` /
 *   `struct foo_response`. The element struct of an array field (or a tagged
 *   struct field) Bar inside struct S is `struct S_bar` -- always the parent
 *   struct's name plus the field name in snake_case, never Kafka's element
 *   type name. Example: ProduceRequest.TopicData[].PartitionData[] is
 *   `struct produce_request_topic_data_partition_data`. Members are the field
 *   names in snake_case (ThrottleTimeMs -> throttle_time_ms).
 *
 *   Types. int8..int64/uint16/float64/bool map to int8_t..int64_t/uint16_t/
 *   double/bool; string, bytes and records to `struct slice` (null is
 *   ptr == NULL; a non-null empty value has a non-NULL ptr); uuid to
 *   uint8_t[16]; an array field Xs to `int32_t xs_count` (-1 = null) plus a
 *   pointer `xs` to its elements (structs, int32_t/int64_t, or struct slice).
 *
 *   Functions, for every message M and every nested struct S:
 *     void S_init(struct S *m);   sets every field to its schema default
 *     int  M_decode(struct reader *r, int16_t version, struct arena *a, struct M *out);
 *     void M_encode(struct buf *b, int16_t version, const struct M *m);
 *   decode returns 0, or -1 when the input is malformed (truncated, bad
 *   lengths, null where not allowed, array counts larger than the remaining
 *   bytes could hold) or the version is outside the supported range. Fields a
 *   version lacks hold their defaults. Arrays are allocated from the arena;
 *   slices BORROW the reader's memory (the request frame), so the frame must
 *   outlive the decoded struct. Trailing bytes after the message are not an
 *   error; callers may check rd_remaining(). encode requires a supported
 *   version (ASSERT), skips fields the version lacks, and writes tagged fields
 *   only when they differ from their defaults. Unknown tagged fields are
 *   skipped when decoding and are not preserved.
 *
 * Errors: decoders return 0 or -1 (malformed). Kafka's error codes (enum kafka_error,
 * carried as int16) are what responses hold, and what modules that answer clients
 * return.
 */
#ifndef SAMSA_PROTO_H
#define SAMSA_PROTO_H

#include "base/base.h"

/* ---- API version table (generated from the schema files) ---- */
struct proto_api {
    int16_t api_key;
    const char *name;             /* Kafka's name, e.g. "Produce" */
    int16_t min_version;          /* lowest version this broker serves */
    int16_t max_version;          /* highest version this broker serves */
    int16_t flexible_min_version; /* first flexible version, or -1 */
};

#include "proto/proto_gen.h"

/* Every API we serve, sorted by api key (PROTO_API_COUNT entries). */
extern const struct proto_api proto_apis[PROTO_API_COUNT];
/* NULL if the key is not served. */
const struct proto_api *proto_api_find(int16_t api_key);
/* True if api_key is known and version >= its first flexible version. Also
 * answers for versions above max_version (they stay flexible). */
bool proto_is_flexible(int16_t api_key, int16_t version);
/* True if the api is served at this version. */
bool proto_version_supported(int16_t api_key, int16_t version);

/* ---- request and response headers ---- */
struct request_header {
    int16_t api_key;
    int16_t api_version;
    int32_t correlation_id;
    struct slice client_id; /* nullable; borrows the frame */
};

enum proto_header_status {
    PROTO_HDR_OK = 0,
    PROTO_HDR_MALFORMED = -1,   /* too short or bad client_id: close the connection */
    PROTO_HDR_UNSUPPORTED = -2, /* unknown api or version: header v1 fields are valid */
};

/* Decodes a request header (v1, or v2 with tagged fields when the api/version
 * is flexible). Reads api_key and api_version first to choose. For an unknown
 * api or unsupported version the v1 fields are decoded (so the server can
 * answer, e.g. ApiVersions with UNSUPPORTED_VERSION) and PROTO_HDR_UNSUPPORTED
 * is returned; the reader is then NOT positioned at the body. */
int proto_request_header_decode(struct reader *r, struct request_header *out);
/* Response header v0 (correlation id) or v1 (+ empty tagged fields) when the
 * request was flexible -- except ApiVersions, always v0. */
void proto_response_header_encode(struct buf *b, int16_t api_key, int16_t api_version,
                                  int32_t correlation_id);
/* Response header decode (clients, and a broker relaying another's answer): the
 * correlation id, then the tagged fields proto_response_header_encode's rule puts there,
 * skipped. The reader is left at the body; r->err set if it is cut short. */
int32_t proto_response_header_decode(struct reader *r, int16_t api_key, int16_t api_version);
/* Request header encode (clients, tests): v2 if flexible, else v1. */
void proto_request_header_encode(struct buf *b, const struct request_header *h);

/* ---- Kafka error codes (org.apache.kafka.common.protocol.Errors) ---- */
enum kafka_error {
    KERR_UNKNOWN_SERVER_ERROR = -1,
    KERR_NONE = 0,
    KERR_OFFSET_OUT_OF_RANGE = 1,
    KERR_CORRUPT_MESSAGE = 2,
    KERR_UNKNOWN_TOPIC_OR_PARTITION = 3,
    KERR_INVALID_FETCH_SIZE = 4,
    KERR_LEADER_NOT_AVAILABLE = 5,
    KERR_NOT_LEADER_OR_FOLLOWER = 6,
    KERR_REQUEST_TIMED_OUT = 7,
    KERR_BROKER_NOT_AVAILABLE = 8,
    KERR_REPLICA_NOT_AVAILABLE = 9,
    KERR_MESSAGE_TOO_LARGE = 10,
    KERR_STALE_CONTROLLER_EPOCH = 11,
    KERR_OFFSET_METADATA_TOO_LARGE = 12,
    KERR_NETWORK_EXCEPTION = 13,
    KERR_COORDINATOR_LOAD_IN_PROGRESS = 14,
    KERR_COORDINATOR_NOT_AVAILABLE = 15,
    KERR_NOT_COORDINATOR = 16,
    KERR_INVALID_TOPIC_EXCEPTION = 17,
    KERR_RECORD_LIST_TOO_LARGE = 18,
    KERR_NOT_ENOUGH_REPLICAS = 19,
    KERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND = 20,
    KERR_INVALID_REQUIRED_ACKS = 21,
    KERR_ILLEGAL_GENERATION = 22,
    KERR_INCONSISTENT_GROUP_PROTOCOL = 23,
    KERR_INVALID_GROUP_ID = 24,
    KERR_UNKNOWN_MEMBER_ID = 25,
    KERR_INVALID_SESSION_TIMEOUT = 26,
    KERR_REBALANCE_IN_PROGRESS = 27,
    KERR_INVALID_COMMIT_OFFSET_SIZE = 28,
    KERR_TOPIC_AUTHORIZATION_FAILED = 29,
    KERR_GROUP_AUTHORIZATION_FAILED = 30,
    KERR_CLUSTER_AUTHORIZATION_FAILED = 31,
    KERR_INVALID_TIMESTAMP = 32,
    KERR_UNSUPPORTED_SASL_MECHANISM = 33,
    KERR_ILLEGAL_SASL_STATE = 34,
    KERR_UNSUPPORTED_VERSION = 35,
    KERR_TOPIC_ALREADY_EXISTS = 36,
    KERR_INVALID_PARTITIONS = 37,
    KERR_INVALID_REPLICATION_FACTOR = 38,
    KERR_INVALID_REPLICA_ASSIGNMENT = 39,
    KERR_INVALID_CONFIG = 40,
    KERR_NOT_CONTROLLER = 41,
    KERR_INVALID_REQUEST = 42,
    KERR_UNSUPPORTED_FOR_MESSAGE_FORMAT = 43,
    KERR_POLICY_VIOLATION = 44,
    KERR_OUT_OF_ORDER_SEQUENCE_NUMBER = 45,
    KERR_DUPLICATE_SEQUENCE_NUMBER = 46,
    KERR_INVALID_PRODUCER_EPOCH = 47,
    KERR_INVALID_TXN_STATE = 48,
    KERR_INVALID_PRODUCER_ID_MAPPING = 49,
    KERR_INVALID_TRANSACTION_TIMEOUT = 50,
    KERR_CONCURRENT_TRANSACTIONS = 51,
    KERR_TRANSACTION_COORDINATOR_FENCED = 52,
    KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53,
    KERR_SECURITY_DISABLED = 54,
    KERR_OPERATION_NOT_ATTEMPTED = 55,
    KERR_KAFKA_STORAGE_ERROR = 56,
    KERR_LOG_DIR_NOT_FOUND = 57,
    KERR_SASL_AUTHENTICATION_FAILED = 58,
    KERR_UNKNOWN_PRODUCER_ID = 59,
    KERR_REASSIGNMENT_IN_PROGRESS = 60,
    KERR_DELEGATION_TOKEN_AUTH_DISABLED = 61,
    KERR_DELEGATION_TOKEN_NOT_FOUND = 62,
    KERR_DELEGATION_TOKEN_OWNER_MISMATCH = 63,
    KERR_DELEGATION_TOKEN_REQUEST_NOT_ALLOWED = 64,
    KERR_DELEGATION_TOKEN_AUTHORIZATION_FAILED = 65,
    KERR_DELEGATION_TOKEN_EXPIRED = 66,
    KERR_INVALID_PRINCIPAL_TYPE = 67,
    KERR_NON_EMPTY_GROUP = 68,
    KERR_GROUP_ID_NOT_FOUND = 69,
    KERR_FETCH_SESSION_ID_NOT_FOUND = 70,
    KERR_INVALID_FETCH_SESSION_EPOCH = 71,
    KERR_LISTENER_NOT_FOUND = 72,
    KERR_TOPIC_DELETION_DISABLED = 73,
    KERR_FENCED_LEADER_EPOCH = 74,
    KERR_UNKNOWN_LEADER_EPOCH = 75,
    KERR_UNSUPPORTED_COMPRESSION_TYPE = 76,
    KERR_STALE_BROKER_EPOCH = 77,
    KERR_OFFSET_NOT_AVAILABLE = 78,
    KERR_MEMBER_ID_REQUIRED = 79,
    KERR_PREFERRED_LEADER_NOT_AVAILABLE = 80,
    KERR_GROUP_MAX_SIZE_REACHED = 81,
    KERR_FENCED_INSTANCE_ID = 82,
    KERR_ELIGIBLE_LEADERS_NOT_AVAILABLE = 83,
    KERR_ELECTION_NOT_NEEDED = 84,
    KERR_NO_REASSIGNMENT_IN_PROGRESS = 85,
    KERR_GROUP_SUBSCRIBED_TO_TOPIC = 86,
    KERR_INVALID_RECORD = 87,
    KERR_UNSTABLE_OFFSET_COMMIT = 88,
    KERR_THROTTLING_QUOTA_EXCEEDED = 89,
    KERR_PRODUCER_FENCED = 90,
    KERR_RESOURCE_NOT_FOUND = 91,
    KERR_DUPLICATE_RESOURCE = 92,
    KERR_UNACCEPTABLE_CREDENTIAL = 93,
    KERR_INCONSISTENT_VOTER_SET = 94,
    KERR_INVALID_UPDATE_VERSION = 95,
    KERR_FEATURE_UPDATE_FAILED = 96,
    KERR_PRINCIPAL_DESERIALIZATION_FAILURE = 97,
    KERR_SNAPSHOT_NOT_FOUND = 98,
    KERR_UNKNOWN_TOPIC_ID = 100,
    KERR_DUPLICATE_BROKER_REGISTRATION = 101,
    KERR_BROKER_ID_NOT_REGISTERED = 102,
    KERR_INCONSISTENT_TOPIC_ID = 103,
    KERR_INCONSISTENT_CLUSTER_ID = 104,
    KERR_TRANSACTIONAL_ID_NOT_FOUND = 105,
    KERR_FETCH_SESSION_TOPIC_ID_ERROR = 106,
    KERR_INELIGIBLE_REPLICA = 107,
    KERR_NEW_LEADER_ELECTED = 108,
    KERR_OFFSET_MOVED_TO_TIERED_STORAGE = 109,
    KERR_FENCED_MEMBER_EPOCH = 110,
    KERR_UNRELEASED_INSTANCE_ID = 111,
    KERR_UNSUPPORTED_ASSIGNOR = 112,
    KERR_STALE_MEMBER_EPOCH = 113,
    KERR_MISMATCHED_ENDPOINT_TYPE = 114,
    KERR_UNSUPPORTED_ENDPOINT_TYPE = 115,
    KERR_UNKNOWN_CONTROLLER_ID = 116,
    KERR_UNKNOWN_SUBSCRIPTION_ID = 117,
    KERR_TELEMETRY_TOO_LARGE = 118,
    KERR_INVALID_REGISTRATION = 119,
    KERR_TRANSACTION_ABORTABLE = 120,
    KERR_INVALID_RECORD_STATE = 121,
    KERR_SHARE_SESSION_NOT_FOUND = 122,
    KERR_INVALID_SHARE_SESSION_EPOCH = 123,
    KERR_FENCED_STATE_EPOCH = 124,
    KERR_INVALID_VOTER_KEY = 125,
    KERR_DUPLICATE_VOTER = 126,
    KERR_VOTER_NOT_FOUND = 127,
    KERR_INVALID_REGULAR_EXPRESSION = 128,
};
/* Kafka's name for the code ("UNKNOWN_TOPIC_OR_PARTITION"), or "UNKNOWN". */
const char *kafka_error_name(int16_t code);

#endif
