/* Record data in fetch responses. The generated encoder writes a records field as a
 * length prefix and the bytes; here the bytes come from the segment file instead, either
 * by sendfile(2) (zero copy) or by one pread into the reply buffer (the copy path).
 * So each records field is encoded as a 16-byte marker (a per-process random prefix and
 * the range's index), and the encoded response is then streamed into the reply piece
 * by piece: the bytes before a marker's length prefix, the prefix rewritten for the
 * real length, and the file range itself (sent by net with sendfile). The encoded part
 * is small (headers and offsets), so scanning it for markers is cheap. */
#include "server/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#define MARKER_BYTES 16
static uint8_t marker_prefix[8];
static bool marker_ready;

static void init_marker(void)
{
    if (marker_ready)
        return;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, marker_prefix, sizeof marker_prefix) != sizeof marker_prefix) {
        uint64_t t = (uint64_t)time_mono_ns() * 0x9E3779B97F4A7C15ULL;
        memcpy(marker_prefix, &t, sizeof marker_prefix);
    }
    if (fd >= 0)
        close(fd);
    marker_ready = true;
}

struct slice fetch_file_marker(size_t index)
{
    init_marker();
    /* Markers live in static storage: one per range index, built once. */
    static uint8_t markers[FETCH_MAX_FILE_RANGES][MARKER_BYTES];
    ASSERT(index < FETCH_MAX_FILE_RANGES);
    memcpy(markers[index], marker_prefix, 8);
    be64_write(markers[index] + 8, (uint64_t)index);
    return (struct slice){markers[index], MARKER_BYTES};
}

void fetch_send_with_files(struct request *req, const struct buf *encoded,
                           const struct log_read_result *files, const bool *as_file, size_t n)
{
    bool flexible = proto_is_flexible(req->hdr.api_key, req->hdr.api_version);
    /* The marker's own length prefix: int32 16, or uvarint 17 (compact bytes). */
    size_t prefix_len = flexible ? 1 : 4;
    /* The reply's memory, allocated once and exactly: the budget counts what it holds,
     * and growth by doubling would hold up to twice the copied bytes. */
    size_t copied = 0;
    for (size_t i = 0; i < n; i++)
        copied += as_file[i] ? 0 : (size_t)files[i].len;
    net_reply_expect(req->reply, encoded->len + copied + 64); /* + response header */
    struct buf *out = request_response_begin(req);
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        struct slice m = fetch_file_marker(i);
        const uint8_t *hit = memmem(encoded->data + pos, encoded->len - pos, m.ptr, m.len);
        ASSERT(hit != NULL && (size_t)(hit - encoded->data) >= pos + prefix_len);
        size_t at = (size_t)(hit - encoded->data);
        buf_append(out, encoded->data + pos, at - prefix_len - pos);
        if (flexible)
            buf_put_uvarint(out, (uint64_t)files[i].len + 1);
        else
            buf_put_i32(out, (int32_t)files[i].len);
        int fd = as_file[i] ? dup(files[i].fd) : -1;
        if (fd >= 0) {
            net_reply_add_file(req->reply, fd, files[i].file_pos, files[i].len);
            out = net_reply_buf(req->reply);
        } else {
            if (as_file[i])
                say_warn_ratelimited("server",
                                     "dup of a segment fd failed (%s); copying "
                                     "instead",
                                     strerror(errno));
            buf_reserve(out, (size_t)files[i].len);
            uint8_t *dst = out->data + out->len;
            int rc = pread_exact(files[i].fd, dst, (size_t)files[i].len, files[i].file_pos);
            out->len += (size_t)files[i].len;
            if (rc != 0) {
                /* The length prefix is already written: the only honest way out is to
                 * close the connection; the client retries. */
                struct net_conn *c = net_reply_conn(req->reply);
                say_error("server", "reading a segment for a fetch failed (%s); closing %s",
                          strerror(-rc), c ? net_conn_peer(c) : "the connection");
                request_drop(req);
                if (c)
                    net_conn_close(c);
                return;
            }
        }
        pos = at + MARKER_BYTES;
    }
    buf_append(out, encoded->data + pos, encoded->len - pos);
    request_response_end(req);
}
