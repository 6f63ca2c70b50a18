/*
 * codec.h: primitives shared by the generated codec (proto_gen.c): Kafka's
 * strings, bytes, arrays and uuids in both the classic encoding (int16/int32
 * length prefixes, -1 for null) and the compact encoding of flexible versions
 * (unsigned varint of length+1, 0 for null), and the tagged-field section.
 * Internal to the proto module. Readers report malformed input through the
 * reader's sticky err flag, so generated code checks once per message.
 */
#ifndef SAMSA_PROTO_CODEC_H
#define SAMSA_PROTO_CODEC_H

#include "base/base.h"

#define PC_UNUSED __attribute__((unused))

/* Strings and bytes: the returned slice borrows the reader's memory. Null is
 * {NULL, 0}; a non-null empty value has a non-NULL ptr. A null where the
 * version does not allow it, a negative length other than -1, or a length past
 * the end of the input sets r->err. */
struct slice pc_read_string(struct reader *r, bool compact, bool nullable);
struct slice pc_read_bytes(struct reader *r, bool compact, bool nullable);
/* Array length: returns -1 for null, else the count. The count is capped by
 * the bytes left divided by min_elem_size (every element takes at least that
 * many bytes), so a hostile count cannot make the decoder allocate more than
 * a small multiple of the frame size. */
int32_t pc_read_array_len(struct reader *r, bool compact, bool nullable, size_t min_elem_size);
void pc_read_uuid(struct reader *r, uint8_t out[16]);
/* Tagged-field section: the count, then per field its tag; *sub is set to a
 * reader over exactly that field's bytes and r is advanced past them. */
uint64_t pc_read_tag_count(struct reader *r);
uint64_t pc_read_tag(struct reader *r, struct reader *sub);

/* Writers. A null slice in a version where the field is not nullable is
 * written as empty (the C struct cannot express the difference to the type
 * checker; handlers should not produce it). */
void pc_write_string(struct buf *b, bool compact, bool nullable, struct slice s);
void pc_write_bytes(struct buf *b, bool compact, bool nullable, struct slice s);
void pc_write_array_len(struct buf *b, bool compact, bool nullable, int32_t count);
void pc_write_tagged(struct buf *b, uint32_t tag, const struct buf *field);

bool pc_slice_is(struct slice s, const char *lit, size_t len);
bool pc_uuid_is_zero(const uint8_t u[16]);

#endif
