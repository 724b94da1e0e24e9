/* The cheapest possible stream UDF: the floor any UDF agent can reach end to end.
 *
 * Kapacitor's Request and Response share field numbers for keepalive, begin,
 * point and end, so those frames are echoed byte for byte without parsing.
 * Info, Init and Restore get fixed answers (wants/provides STREAM, success).
 * One read and one write per chunk, and the agent's gather pause (0.5 ms after a
 * read under 16 KiB), so kapacitord sees the same I/O pattern as with udfkit.
 * Benchmark reference only, not a product UDF.
 *
 *   cc -O2 -o echo_udf bench/echo_udf.c
 */
#include <stdint.h>
#include <string.h>
#include <unistd.h>

enum { BUF = 1 << 20 };

static unsigned char in[BUF], out[2 * BUF];
static const unsigned char INFO[] = {0x02, 0x0a, 0x00};             /* info {} */
static const unsigned char INIT[] = {0x04, 0x12, 0x02, 0x08, 0x01}; /* init {success} */
static const unsigned char RESTORE[] = {0x04, 0x2a, 0x02, 0x08, 0x01}; /* restore {success} */

/* Decode a varint at p (at most end); returns bytes used, 0 if incomplete. */
static size_t varint(const unsigned char *p, const unsigned char *end, uint64_t *value) {
    *value = 0;
    for (size_t i = 0; i < 10 && p + i < end; i++) {
        *value |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) return i + 1;
    }
    return 0;
}

static int write_all(const unsigned char *p, size_t n) {
    while (n) {
        ssize_t w = write(1, p, n);
        if (w <= 0) return -1;
        p += w, n -= (size_t)w;
    }
    return 0;
}

int main(void) {
    size_t have = 0;
    for (;;) {
        ssize_t r = read(0, in + have, BUF - have);
        if (r <= 0) return 0;
        have += (size_t)r;
        size_t pos = 0, used = 0;
        while (pos < have) {
            uint64_t size, tag;
            size_t head = varint(in + pos, in + have, &size);
            if (!head || size > BUF / 2) break;
            if (pos + head + size > have) break;
            const unsigned char *msg = in + pos + head;
            varint(msg, msg + size, &tag);
            if (tag >> 3 == 1) {
                memcpy(out + used, INFO, sizeof INFO), used += sizeof INFO;
            } else if (tag >> 3 == 2) {
                memcpy(out + used, INIT, sizeof INIT), used += sizeof INIT;
            } else if (tag >> 3 == 5) {
                memcpy(out + used, RESTORE, sizeof RESTORE), used += sizeof RESTORE;
            } else {
                memcpy(out + used, in + pos, head + size), used += head + size;
            }
            pos += head + size;
        }
        if (write_all(out, used)) return 1;
        memmove(in, in + pos, have - pos);
        have -= pos;
        if (r < 16384) usleep(500);
    }
}
