/*
 * Record batch (magic 2) header parsing and validation. Used on produce (untrusted bytes
 * from clients), during recovery (bytes from a possibly torn file) and by followers.
 * The layout is in storage.h and docs/storage-format.md.
 */
#include <errno.h>

#include "storage/storage_internal.h"

int batch_parse_header(const uint8_t *p, size_t len, struct batch_info *out)
{
    if (len < BATCH_LOG_OVERHEAD)
        return STORAGE_ERR_SHORT;
    int32_t batch_length = (int32_t)be32_read(p + BATCH_OFF_LENGTH);
    if (batch_length < BATCH_MIN_LENGTH)
        return STORAGE_ERR_CORRUPT;
    /* magic sits before the CRC; check it as soon as it is present so that an old
     * message format is reported as such rather than as a CRC failure. */
    if (len > BATCH_OFF_MAGIC && (int8_t)p[BATCH_OFF_MAGIC] != 2)
        return STORAGE_ERR_BAD_MAGIC;
    size_t size = (size_t)batch_length + BATCH_LOG_OVERHEAD;
    if (len < size)
        return STORAGE_ERR_SHORT;
    return batch_parse_header_only(p, out);
}

int batch_parse_header_only(const uint8_t *p, struct batch_info *out)
{
    int32_t batch_length = (int32_t)be32_read(p + BATCH_OFF_LENGTH);
    if (batch_length < BATCH_MIN_LENGTH)
        return STORAGE_ERR_CORRUPT;
    if ((int8_t)p[BATCH_OFF_MAGIC] != 2)
        return STORAGE_ERR_BAD_MAGIC;
    size_t size = (size_t)batch_length + BATCH_LOG_OVERHEAD;
    int32_t last_offset_delta = (int32_t)be32_read(p + BATCH_OFF_LAST_OFFSET_DELTA);
    int32_t records_count = (int32_t)be32_read(p + BATCH_OFF_RECORDS_COUNT);
    if (last_offset_delta < 0 || records_count < 0)
        return STORAGE_ERR_CORRUPT;
    if (out) {
        out->base_offset = (int64_t)be64_read(p + BATCH_OFF_BASE_OFFSET);
        out->batch_length = batch_length;
        out->size_bytes = size;
        out->partition_leader_epoch = (int32_t)be32_read(p + BATCH_OFF_LEADER_EPOCH);
        out->crc = be32_read(p + BATCH_OFF_CRC);
        out->attributes = (int16_t)be16_read(p + BATCH_OFF_ATTRIBUTES);
        out->last_offset_delta = last_offset_delta;
        out->first_timestamp = (int64_t)be64_read(p + BATCH_OFF_BASE_TIMESTAMP);
        out->max_timestamp = (int64_t)be64_read(p + BATCH_OFF_MAX_TIMESTAMP);
        out->producer_id = (int64_t)be64_read(p + BATCH_OFF_PRODUCER_ID);
        out->producer_epoch = (int16_t)be16_read(p + BATCH_OFF_PRODUCER_EPOCH);
        out->base_sequence = (int32_t)be32_read(p + BATCH_OFF_BASE_SEQUENCE);
        out->records_count = records_count;
    }
    return 0;
}

int batch_validate(const uint8_t *p, size_t len, struct batch_info *out)
{
    struct batch_info info;
    int rc = batch_parse_header(p, len, &info);
    if (rc != 0)
        return rc;
    uint32_t crc = crc32c(0, p + BATCH_OFF_ATTRIBUTES, info.size_bytes - BATCH_OFF_ATTRIBUTES);
    if (crc != info.crc)
        return STORAGE_ERR_CORRUPT;
    if (out)
        *out = info;
    return 0;
}

int batch_count_records_check(const uint8_t *p, const struct batch_info *info)
{
    if (batch_compression(info) != 0)
        return 0;
    return batch_check_records(p, info, NULL);
}

void batch_iter_init(struct batch_iter *it, const uint8_t *p, size_t len)
{
    it->p = p;
    it->len = len;
    it->pos = 0;
    it->batch_pos = 0;
}

int batch_iter_next(struct batch_iter *it, struct batch_info *out, bool check_crc)
{
    if (it->pos == it->len)
        return 0;
    const uint8_t *p = it->p + it->pos;
    size_t left = it->len - it->pos;
    int rc = check_crc ? batch_validate(p, left, out) : batch_parse_header(p, left, out);
    if (rc != 0)
        return rc;
    it->batch_pos = it->pos;
    it->pos += out->size_bytes;
    return 1;
}

void batch_clear_log_append_time(uint8_t *batch, const struct batch_info *info)
{
    uint16_t attrs = be16_read(batch + BATCH_OFF_ATTRIBUTES);
    be16_write(batch + BATCH_OFF_ATTRIBUTES, (uint16_t)(attrs & ~BATCH_ATTR_LOG_APPEND_TIME));
    be32_write(batch + BATCH_OFF_CRC,
               crc32c(0, batch + BATCH_OFF_ATTRIBUTES, info->size_bytes - BATCH_OFF_ATTRIBUTES));
}

int batch_validate_all(const uint8_t *p, size_t len, bool check_records, int *batches_out,
                       int64_t *records_out)
{
    struct batch_iter it;
    struct batch_info info;
    int batches = 0;
    int64_t records = 0;
    int rc;
    batch_iter_init(&it, p, len);
    while ((rc = batch_iter_next(&it, &info, true)) > 0) {
        if (check_records) {
            int crc = batch_count_records_check(it.p + it.batch_pos, &info);
            if (crc != 0)
                return crc;
        }
        batches++;
        records += info.records_count;
    }
    if (rc < 0)
        return rc;
    if (batches == 0)
        return STORAGE_ERR_CORRUPT;
    if (batches_out)
        *batches_out = batches;
    if (records_out)
        *records_out = records;
    return 0;
}

const char *storage_strerror(int err)
{
    switch (err) {
    case 0: return "ok";
    case STORAGE_ERR_CORRUPT: return "corrupt record batch";
    case STORAGE_ERR_BAD_MAGIC: return "unsupported record batch magic";
    case STORAGE_ERR_SHORT: return "record batch truncated";
    case STORAGE_ERR_OUT_OF_RANGE: return "offset out of range";
    case STORAGE_ERR_BATCH_TOO_LARGE:
        return "record batch too large (segment size, or max.message.bytes after recompression)";
    case STORAGE_ERR_LOG_FAILED: return "log failed after an I/O error";
    case STORAGE_ERR_CLEAN_ABORTED: return "segments changed during compaction";
    case STORAGE_ERR_OUT_OF_ORDER_SEQUENCE: return "producer sequence out of order";
    case STORAGE_ERR_INVALID_PRODUCER_EPOCH: return "producer epoch is older than the producer's";
    case STORAGE_DUPLICATE: return "duplicate of a batch already appended";
    case STORAGE_ERR_DECOMPRESS_LIMIT: return "record batch decompresses past the bound";
    case STORAGE_ERR_NO_KEY: return "record without a key";
    case -EMFILE: return "too many open files (the process's RLIMIT_NOFILE is reached)";
    case -ENFILE: return "too many open files in the system (fs.file-max is reached)";
    default: return err < 0 && err > -4096 ? strerror(-err) : "unknown storage error";
    }
}
