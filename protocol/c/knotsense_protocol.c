/*
 * knotsense_protocol.c -- protocol v1 for device firmware (C99).
 * See knotsense_protocol.h. No malloc, no stdio, no undefined behaviour.
 */
#include "knotsense_protocol.h"

#include <string.h>

/* ------------------------------------------------------------------------ */
/* Byte packing (explicit little-endian, no struct casts)                    */

typedef struct writer {
    uint8_t *p;
    size_t cap;
    size_t len;
    int overflow;
} writer;

static void w_init(writer *w, uint8_t *p, size_t cap)
{
    w->p = p;
    w->cap = p ? cap : 0u;
    w->len = 0u;
    w->overflow = 0;
}

static void w_u8(writer *w, uint32_t v)
{
    if (w->len < w->cap) {
        w->p[w->len] = (uint8_t)(v & 0xFFu);
        w->len++;
    } else {
        w->overflow = 1;
    }
}

static void w_u16(writer *w, uint32_t v)
{
    w_u8(w, v);
    w_u8(w, v >> 8);
}

static void w_u32(writer *w, uint32_t v)
{
    w_u16(w, v & 0xFFFFu);
    w_u16(w, v >> 16);
}

/* Two's complement bit pattern of a signed value (conversion to unsigned is
 * defined modulo 2^N). */
static void w_i16(writer *w, int16_t v) { w_u16(w, (uint16_t)v); }
static void w_i32(writer *w, int32_t v) { w_u32(w, (uint32_t)v); }

static void w_bytes(writer *w, const uint8_t *src, size_t n)
{
    if (n == 0u) {
        return;
    }
    if (src == NULL || n > w->cap - w->len) {
        w->overflow = 1;
        return;
    }
    memmove(w->p + w->len, src, n);
    w->len += n;
}

static ks_result w_done(const writer *w, size_t *len)
{
    if (w->overflow) {
        return KS_ERR_SPACE;
    }
    if (len) {
        *len = w->len;
    }
    return KS_OK;
}

static uint16_t rd_u16(const uint8_t *p) { return (uint16_t)(p[0] | (uint16_t)(p[1] << 8)); }

static uint32_t rd_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* Unsigned bit pattern to signed value without implementation-defined
 * conversions. */
static int16_t to_i16(uint16_t u)
{
    return u <= 0x7FFFu ? (int16_t)u : (int16_t)(-(int32_t)(0xFFFFu - u) - 1);
}

static int32_t to_i32(uint32_t u)
{
    return u <= 0x7FFFFFFFu ? (int32_t)u : (int32_t)(-(int32_t)(0xFFFFFFFFu - u) - 1);
}

static int64_t to_i64(uint64_t u)
{
    return u <= (uint64_t)INT64_MAX ? (int64_t)u : -(int64_t)(~u) - 1;
}

static int16_t rd_i16(const uint8_t *p) { return to_i16(rd_u16(p)); }
static int32_t rd_i32(const uint8_t *p) { return to_i32(rd_u32(p)); }

unsigned ks_popcount8(uint8_t mask)
{
    unsigned n = 0u;
    unsigned m = mask;
    while (m) {
        n += m & 1u;
        m >>= 1;
    }
    return n;
}

/* ------------------------------------------------------------------------ */
/* CRC-16/IBM-3740, a nibble at a time (32-byte table)                       */

static const uint16_t crc_nibble[16] = {
    0x0000u, 0x1021u, 0x2042u, 0x3063u, 0x4084u, 0x50A5u, 0x60C6u, 0x70E7u,
    0x8108u, 0x9129u, 0xA14Au, 0xB16Bu, 0xC18Cu, 0xD1ADu, 0xE1CEu, 0xF1EFu,
};

static uint16_t crc_byte(uint16_t crc, uint8_t b)
{
    crc = (uint16_t)((crc << 4) ^ crc_nibble[((crc >> 12) ^ (b >> 4)) & 0x0Fu]);
    crc = (uint16_t)((crc << 4) ^ crc_nibble[((crc >> 12) ^ (b & 0x0Fu)) & 0x0Fu]);
    return crc;
}

uint16_t ks_crc16(const uint8_t *data, size_t len, uint16_t crc)
{
    size_t i;
    if (data == NULL) {
        return crc;
    }
    for (i = 0; i < len; i++) {
        crc = crc_byte(crc, data[i]);
    }
    return crc;
}

/* ------------------------------------------------------------------------ */
/* COBS                                                                      */

ks_result ks_cobs_encode(const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
    size_t o = 1u;    /* next output byte */
    size_t code_at = 0u;
    uint32_t code = 1u;
    size_t i;
    if ((in == NULL && len) || out == NULL || cap == 0u) {
        return out == NULL || (in == NULL && len) ? KS_ERR_ARG : KS_ERR_SPACE;
    }
    for (i = 0; i < len; i++) {
        if (in[i] == 0u) {
            out[code_at] = (uint8_t)code;
            code_at = o;
            if (o >= cap) {
                return KS_ERR_SPACE;
            }
            o++;
            code = 1u;
        } else {
            if (o >= cap) {
                return KS_ERR_SPACE;
            }
            out[o++] = in[i];
            code++;
            if (code == 0xFFu) {
                out[code_at] = 0xFFu;
                if (i + 1u == len) {
                    /* A full run ends the data: no further code byte. */
                    if (out_len) {
                        *out_len = o;
                    }
                    return KS_OK;
                }
                code_at = o;
                if (o >= cap) {
                    return KS_ERR_SPACE;
                }
                o++;
                code = 1u;
            }
        }
    }
    out[code_at] = (uint8_t)code;
    if (out_len) {
        *out_len = o;
    }
    return KS_OK;
}

ks_result ks_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
    size_t i = 0u;
    size_t o = 0u;
    if ((in == NULL && len) || (out == NULL && cap)) {
        return KS_ERR_ARG;
    }
    while (i < len) {
        size_t code = in[i];
        size_t end = i + code;
        size_t k;
        if (code == 0u || end > len) {
            return KS_ERR_FRAMING;
        }
        for (k = i + 1u; k < end; k++) {
            if (in[k] == 0u) {
                return KS_ERR_FRAMING;
            }
            if (o >= cap) {
                return KS_ERR_SPACE;
            }
            out[o++] = in[k]; /* o < k always, so in-place decoding is safe */
        }
        i = end;
        if (code < 0xFFu && i < len) {
            if (o >= cap) {
                return KS_ERR_SPACE;
            }
            out[o++] = 0u;
        }
    }
    if (out_len) {
        *out_len = o;
    }
    return KS_OK;
}

/* ------------------------------------------------------------------------ */
/* Frames                                                                    */

static ks_result finish_frame(uint8_t *frame, uint8_t type, uint16_t seq, size_t payload_len,
                              size_t *frame_len)
{
    uint16_t crc;
    size_t n = KS_HEADER_SIZE + payload_len;
    frame[0] = (uint8_t)KS_PROTOCOL_VERSION;
    frame[1] = type;
    frame[2] = (uint8_t)(seq & 0xFFu);
    frame[3] = (uint8_t)(seq >> 8);
    frame[4] = (uint8_t)(payload_len & 0xFFu);
    frame[5] = (uint8_t)(payload_len >> 8);
    crc = ks_crc16(frame, n, KS_CRC_INIT);
    frame[n] = (uint8_t)(crc >> 8);
    frame[n + 1u] = (uint8_t)(crc & 0xFFu);
    if (frame_len) {
        *frame_len = n + KS_CRC_SIZE;
    }
    return KS_OK;
}

ks_result ks_build_frame(uint8_t *frame, size_t cap, uint8_t type, uint16_t seq,
                         const uint8_t *payload, size_t payload_len, size_t *frame_len)
{
    if (frame == NULL || (payload == NULL && payload_len)) {
        return KS_ERR_ARG;
    }
    if (payload_len > KS_MAX_PAYLOAD_SIZE) {
        return KS_ERR_RANGE;
    }
    if (cap < payload_len + KS_FRAME_OVERHEAD) {
        return KS_ERR_SPACE;
    }
    if (payload_len && payload != KS_PAYLOAD(frame)) {
        memmove(KS_PAYLOAD(frame), payload, payload_len);
    }
    return finish_frame(frame, type, seq, payload_len, frame_len);
}

ks_result ks_parse_frame(const uint8_t *data, size_t len, ks_frame *out)
{
    size_t length;
    if (data == NULL || out == NULL) {
        return KS_ERR_ARG;
    }
    if (len < KS_FRAME_OVERHEAD || len > KS_MAX_FRAME_SIZE) {
        return KS_ERR_FRAMING;
    }
    if (ks_crc16(data, len, KS_CRC_INIT) != 0u) {
        return KS_ERR_CRC;
    }
    if (data[0] != KS_PROTOCOL_VERSION) {
        return KS_ERR_VERSION;
    }
    length = rd_u16(data + 4);
    if (length != len - KS_FRAME_OVERHEAD) {
        return KS_ERR_FRAMING;
    }
    out->version = data[0];
    out->type = data[1];
    out->seq = rd_u16(data + 2);
    out->payload = data + KS_HEADER_SIZE;
    out->payload_len = length;
    return KS_OK;
}

ks_result ks_stuff_frame(const uint8_t *frame, size_t frame_len, uint8_t *out, size_t cap,
                         size_t *out_len)
{
    size_t n = 0u;
    ks_result r;
    if (out == NULL || cap == 0u) {
        return out == NULL ? KS_ERR_ARG : KS_ERR_SPACE;
    }
    r = ks_cobs_encode(frame, frame_len, out, cap - 1u, &n);
    if (r != KS_OK) {
        return r;
    }
    out[n] = 0u;
    if (out_len) {
        *out_len = n + 1u;
    }
    return KS_OK;
}

/* ------------------------------------------------------------------------ */
/* BLE link layer v1.1: fragments                                            */

size_t ks_fragment_payload_size(uint16_t att_mtu)
{
    return (size_t)(att_mtu < 23u ? 23u : att_mtu) - 4u;
}

void ks_fragmenter_init(ks_fragmenter *f)
{
    if (f != NULL) {
        f->counter = 0u;
    }
}

ks_result ks_fragment_next(ks_fragmenter *f, const uint8_t *frame, size_t frame_len,
                           size_t *offset, uint16_t att_mtu, uint8_t *out, size_t cap,
                           size_t *out_len)
{
    size_t size = ks_fragment_payload_size(att_mtu);
    size_t at;
    size_t n;
    uint8_t header;
    if (f == NULL || frame == NULL || offset == NULL || out == NULL || out_len == NULL ||
        frame_len == 0u) {
        return KS_ERR_ARG;
    }
    at = *offset;
    if (at >= frame_len) {
        return KS_ERR_ARG;
    }
    n = frame_len - at;
    if (n > size) {
        n = size;
    }
    if (cap < n + 1u) {
        return KS_ERR_SPACE;
    }
    header = (uint8_t)(f->counter & KS_FRAG_COUNTER_MASK);
    if (at == 0u) {
        header |= KS_FRAG_START;
    }
    if (at + n == frame_len) {
        header |= KS_FRAG_END;
    }
    out[0] = header;
    memcpy(out + 1, frame + at, n);
    f->counter = (uint8_t)((f->counter + 1u) & KS_FRAG_COUNTER_MASK);
    *offset = at + n;
    *out_len = n + 1u;
    return KS_OK;
}

void ks_reassembler_init(ks_reassembler *r)
{
    if (r != NULL) {
        memset(r, 0, sizeof *r);
    }
}

static void ks_reassembler_drop(ks_reassembler *r)
{
    if (r->active) {
        r->stats.frames_dropped++;
        r->stats.bytes_discarded += r->len;
        r->active = 0u;
        r->len = 0u;
    }
}

int ks_reassemble_feed(ks_reassembler *r, const uint8_t *packet, size_t len,
                       const uint8_t **frame, size_t *frame_len)
{
    uint8_t header;
    uint8_t counter;
    size_t body;
    if (r == NULL) {
        return 0;
    }
    r->stats.fragments++;
    if (packet == NULL || len < 2u) {
        r->stats.malformed++;
        return 0;
    }
    header = packet[0];
    counter = (uint8_t)(header & KS_FRAG_COUNTER_MASK);
    if (r->has_expected && counter != r->expected) {
        uint8_t d = (uint8_t)((counter - r->expected) & KS_FRAG_COUNTER_MASK);
        if (d < 8u) {
            r->stats.fragments_lost += d;
        } else {
            r->stats.reordered++;
        }
        ks_reassembler_drop(r);
    }
    r->has_expected = 1u;
    r->expected = (uint8_t)((counter + 1u) & KS_FRAG_COUNTER_MASK);
    body = len - 1u;
    if (header & KS_FRAG_START) {
        ks_reassembler_drop(r);
        r->active = 1u;
        r->len = 0u;
    } else if (!r->active) {
        r->stats.orphans++;
        r->stats.bytes_discarded += (uint32_t)body;
        return 0;
    }
    if ((size_t)r->len + body > KS_MAX_FRAME_SIZE) {
        r->stats.oversize++;
        r->stats.bytes_discarded += (uint32_t)((size_t)r->len + body);
        r->active = 0u;
        r->len = 0u;
        return 0;
    }
    memcpy(r->buf + r->len, packet + 1, body);
    r->len = (uint16_t)(r->len + body);
    if (header & KS_FRAG_END) {
        r->active = 0u;
        r->stats.frames++;
        if (frame != NULL) {
            *frame = r->buf;
        }
        if (frame_len != NULL) {
            *frame_len = r->len;
        }
        r->len = 0u;
        return 1;
    }
    return 0;
}

size_t ks_frame_size_for_mtu(uint16_t att_mtu)
{
    size_t room = att_mtu > 3u ? (size_t)att_mtu - 3u : 0u;
    if (room > KS_MAX_FRAME_SIZE) {
        room = KS_MAX_FRAME_SIZE;
    }
    return room < KS_MIN_FRAME_SIZE ? KS_MIN_FRAME_SIZE : room;
}

/* ------------------------------------------------------------------------ */
/* Incremental stream decoder                                                */

static void stream_restart(ks_stream_decoder *d)
{
    d->len = 0u;
    d->enc_len = 0u;
    d->crc = (uint16_t)KS_CRC_INIT;
    d->code = 0u;
    d->remaining = 0u;
}

void ks_stream_init(ks_stream_decoder *d)
{
    if (d == NULL) {
        return;
    }
    memset(&d->stats, 0, sizeof d->stats);
    d->skipping = 0u;
    stream_restart(d);
}

static void stream_put(ks_stream_decoder *d, uint8_t b)
{
    /* At most enc_len - 1 <= KS_MAX_FRAME_SIZE decoded bytes exist, so this
     * bound never bites; it is kept as a guard. */
    if (d->len < KS_MAX_FRAME_SIZE) {
        d->buf[d->len] = b;
        d->len++;
        d->crc = crc_byte(d->crc, b);
    }
}

static int stream_end_of_run(ks_stream_decoder *d, ks_frame *out)
{
    ks_stream_stats *s = &d->stats;
    size_t enc = d->enc_len;
    size_t n = d->len;
    int rc;
    if (enc == 0u) {
        return 0; /* an empty run (two delimiters in a row) is no frame */
    }
    if (enc <= KS_FRAME_OVERHEAD || d->remaining != 0u) {
        s->framing_errors++;
        rc = KS_ERR_FRAMING;
    } else if (d->crc != 0u) {
        s->crc_errors++;
        rc = KS_ERR_CRC;
    } else if (d->buf[0] != KS_PROTOCOL_VERSION) {
        s->version_errors++;
        rc = KS_ERR_VERSION;
    } else if (n > KS_MAX_FRAME_SIZE || rd_u16(d->buf + 4) != n - KS_FRAME_OVERHEAD) {
        s->framing_errors++;
        rc = KS_ERR_FRAMING;
    } else {
        s->frames++;
        if (out) {
            out->version = d->buf[0];
            out->type = d->buf[1];
            out->seq = rd_u16(d->buf + 2);
            out->payload = d->buf + KS_HEADER_SIZE;
            out->payload_len = n - KS_FRAME_OVERHEAD;
        }
        return 1;
    }
    s->bytes_discarded += (uint32_t)enc;
    return rc;
}

int ks_stream_feed(ks_stream_decoder *d, uint8_t byte, ks_frame *out)
{
    int rc;
    if (d == NULL) {
        return KS_ERR_ARG;
    }
    d->stats.bytes_in++;
    if (byte == 0u) {
        if (d->skipping) {
            d->skipping = 0u;
            stream_restart(d);
            return 0;
        }
        rc = stream_end_of_run(d, out);
        stream_restart(d);
        return rc;
    }
    if (d->skipping) {
        d->stats.bytes_discarded++;
        return 0;
    }
    if (d->enc_len >= KS_MAX_ENCODED_SIZE) {
        /* The run is longer than any frame: drop it up to the next 0x00. */
        d->stats.oversize++;
        d->stats.bytes_discarded += (uint32_t)d->enc_len + 1u;
        d->skipping = 1u;
        stream_restart(d);
        return KS_ERR_OVERSIZE;
    }
    d->enc_len++;
    if (d->remaining == 0u) {
        /* A code byte; the previous block (if any, and not a full 0xFF
         * block) ends with an implied zero because data follows. */
        if (d->enc_len > 1u && d->code < 0xFFu) {
            stream_put(d, 0u);
        }
        d->code = byte;
        d->remaining = (uint8_t)(byte - 1u);
    } else {
        stream_put(d, byte);
        d->remaining--;
    }
    return 0;
}

void ks_seq_init(ks_seq_tracker *t)
{
    if (t) {
        t->last = 0u;
        t->has_last = 0u;
    }
}

int ks_seq_observe(ks_seq_tracker *t, uint16_t seq, uint16_t *lost)
{
    uint16_t prev = t->has_last ? t->last : (uint16_t)(seq - 1u);
    uint16_t jump = (uint16_t)(seq - prev - 1u);
    int kind;
    uint16_t n = 0u;
    if (jump == 0u) {
        kind = KS_SEQ_NEXT;
    } else if (jump == 0xFFFFu) {
        kind = KS_SEQ_DUPLICATE;
    } else if (jump < 0x8000u) {
        kind = KS_SEQ_GAP;
        n = jump;
    } else {
        kind = KS_SEQ_RESET;
    }
    t->last = seq;
    t->has_last = 1u;
    if (lost) {
        *lost = n;
    }
    return kind;
}

/* ------------------------------------------------------------------------ */
/* Message payloads                                                          */

static ks_result build_with(ks_result r, uint8_t *frame, uint8_t type, uint16_t seq, size_t n,
                            size_t *frame_len)
{
    if (r != KS_OK) {
        return r;
    }
    if (n > KS_MAX_PAYLOAD_SIZE) {
        return KS_ERR_RANGE;
    }
    return finish_frame(frame, type, seq, n, frame_len);
}

/* Room for a payload inside a frame buffer of cap bytes. */
static size_t payload_room(size_t cap)
{
    return cap > KS_FRAME_OVERHEAD ? cap - KS_FRAME_OVERHEAD : 0u;
}

#define KS_BUILD(fn_build, fn_encode, type_code, msg_t)                                         \
    ks_result fn_build(uint8_t *frame, size_t cap, uint16_t seq, const msg_t *m,               \
                       size_t *frame_len)                                                      \
    {                                                                                          \
        size_t n = 0u;                                                                         \
        ks_result r;                                                                           \
        if (frame == NULL || m == NULL) {                                                      \
            return KS_ERR_ARG;                                                                 \
        }                                                                                      \
        if (cap < KS_FRAME_OVERHEAD) {                                                         \
            return KS_ERR_SPACE;                                                               \
        }                                                                                      \
        r = fn_encode(m, KS_PAYLOAD(frame), payload_room(cap), &n);                           \
        return build_with(r, frame, (uint8_t)(type_code), seq, n, frame_len);                  \
    }

/* -- DeviceInfo -- */

static void w_str(writer *w, const char *s, size_t n)
{
    w_u8(w, (uint32_t)n);
    w_bytes(w, (const uint8_t *)s, n);
}

ks_result ks_encode_device_info(const ks_device_info *m, uint8_t *out, size_t cap, size_t *len)
{
    writer w;
    unsigned i;
    if (m == NULL || (m->serial_number == NULL && m->serial_number_len) ||
        (m->model == NULL && m->model_len)) {
        return KS_ERR_ARG;
    }
    if (m->rate_count > KS_MAX_RATES || m->channel_count > KS_MAX_CHANNELS ||
        m->serial_number_len > 255u || m->model_len > 255u) {
        return KS_ERR_RANGE;
    }
    w_init(&w, out, cap);
    w_u8(&w, m->protocol_major);
    w_u8(&w, m->protocol_minor);
    w_u8(&w, m->fw_major);
    w_u8(&w, m->fw_minor);
    w_u16(&w, m->fw_patch);
    w_u8(&w, m->hw_revision);
    w_u8(&w, m->adc_bits);
    w_u8(&w, m->units);
    w_u8(&w, m->channel_count);
    w_u32(&w, m->calibration_id);
    w_u8(&w, m->rate_count);
    for (i = 0; i < m->rate_count; i++) {
        w_u16(&w, m->sample_rates[i]);
    }
    for (i = 0; i < m->channel_count; i++) {
        w_u8(&w, m->channels[i].kind);
        w_i16(&w, m->channels[i].x_dmm);
        w_i16(&w, m->channels[i].y_dmm);
    }
    w_str(&w, m->serial_number, m->serial_number_len);
    w_str(&w, m->model, m->model_len);
    return w_done(&w, len);
}

/* Strict UTF-8 (as Python's "utf-8" codec: no overlongs, no surrogates,
 * nothing above U+10FFFF). */
static int utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0u;
    while (i < n) {
        uint8_t c = s[i];
        size_t k;
        size_t extra;
        uint8_t lo = 0x80u;
        uint8_t hi = 0xBFu;
        if (c < 0x80u) {
            i++;
            continue;
        }
        if (c >= 0xC2u && c <= 0xDFu) {
            extra = 1u;
        } else if (c >= 0xE0u && c <= 0xEFu) {
            extra = 2u;
            if (c == 0xE0u) {
                lo = 0xA0u;
            } else if (c == 0xEDu) {
                hi = 0x9Fu;
            }
        } else if (c >= 0xF0u && c <= 0xF4u) {
            extra = 3u;
            if (c == 0xF0u) {
                lo = 0x90u;
            } else if (c == 0xF4u) {
                hi = 0x8Fu;
            }
        } else {
            return 0;
        }
        if (extra > n - i - 1u) {
            return 0;
        }
        for (k = 1u; k <= extra; k++) {
            uint8_t b = s[i + k];
            if (k == 1u ? (b < lo || b > hi) : (b < 0x80u || b > 0xBFu)) {
                return 0;
            }
        }
        i += extra + 1u;
    }
    return 1;
}

/* Read a u8-length-prefixed UTF-8 string at *off. */
static ks_result rd_str(const uint8_t *p, size_t len, size_t *off, const char **s, size_t *n)
{
    size_t k;
    if (*off >= len) {
        return KS_ERR_MESSAGE;
    }
    k = p[*off];
    if (k > len - *off - 1u) {
        return KS_ERR_MESSAGE;
    }
    if (!utf8_valid(p + *off + 1u, k)) {
        return KS_ERR_MESSAGE;
    }
    if (s) {
        *s = (const char *)(p + *off + 1u);
    }
    if (n) {
        *n = k;
    }
    *off += 1u + k;
    return KS_OK;
}

/* Structure of a DeviceInfo payload; fills m when not NULL. */
static ks_result device_info_walk(const uint8_t *p, size_t len, ks_device_info *m)
{
    size_t n_rates;
    size_t n_ch;
    size_t off = 15u;
    size_t i;
    ks_result r;
    if (len < 15u) {
        return KS_ERR_MESSAGE;
    }
    n_ch = p[9];
    n_rates = p[14];
    if (len - off < 2u * n_rates + 5u * n_ch) {
        return KS_ERR_MESSAGE;
    }
    if (m) {
        m->protocol_major = p[0];
        m->protocol_minor = p[1];
        m->fw_major = p[2];
        m->fw_minor = p[3];
        m->fw_patch = rd_u16(p + 4);
        m->hw_revision = p[6];
        m->adc_bits = p[7];
        m->units = p[8];
        m->channel_count = (uint8_t)n_ch;
        m->calibration_id = rd_u32(p + 10);
        m->rate_count = (uint8_t)n_rates;
        for (i = 0; i < n_rates; i++) {
            m->sample_rates[i] = rd_u16(p + off + 2u * i);
        }
    }
    off += 2u * n_rates;
    if (m) {
        for (i = 0; i < n_ch; i++) {
            m->channels[i].kind = p[off + 5u * i];
            m->channels[i].x_dmm = rd_i16(p + off + 5u * i + 1u);
            m->channels[i].y_dmm = rd_i16(p + off + 5u * i + 3u);
        }
    }
    off += 5u * n_ch;
    r = rd_str(p, len, &off, m ? &m->serial_number : NULL, m ? &m->serial_number_len : NULL);
    if (r != KS_OK) {
        return r;
    }
    if (m) {
        m->model = NULL;
        m->model_len = 0u;
    }
    if (off < len) {
        r = rd_str(p, len, &off, m ? &m->model : NULL, m ? &m->model_len : NULL);
    }
    return r;
}

ks_result ks_decode_device_info(const uint8_t *p, size_t len, ks_device_info *m)
{
    ks_result r;
    if ((p == NULL && len) || m == NULL) {
        return KS_ERR_ARG;
    }
    r = device_info_walk(p, len, NULL); /* structure first, then capacity */
    if (r != KS_OK) {
        return r;
    }
    if (p[14] > KS_MAX_RATES || p[9] > KS_MAX_CHANNELS) {
        return KS_ERR_CAPACITY;
    }
    return device_info_walk(p, len, m);
}

KS_BUILD(ks_build_device_info, ks_encode_device_info, KS_MSG_DEVICE_INFO, ks_device_info)

/* -- StreamConfig -- */

ks_result ks_encode_stream_config(const ks_stream_config *m, uint8_t *out, size_t cap, size_t *len)
{
    writer w;
    if (m == NULL) {
        return KS_ERR_ARG;
    }
    w_init(&w, out, cap);
    w_u16(&w, m->rate_hz);
    w_u8(&w, m->channel_mask);
    w_u8(&w, m->encoding);
    w_u32(&w, m->period_ns);
    w_u8(&w, m->samples_per_block);
    w_u8(&w, m->streaming ? 1u : 0u);
    w_u16(&w, m->max_frame_size);
    return w_done(&w, len);
}

ks_result ks_decode_stream_config(const uint8_t *p, size_t len, ks_stream_config *m)
{
    if ((p == NULL && len) || m == NULL) {
        return KS_ERR_ARG;
    }
    if (len < 12u) {
        return KS_ERR_MESSAGE;
    }
    m->rate_hz = rd_u16(p);
    m->channel_mask = p[2];
    m->encoding = p[3];
    m->period_ns = rd_u32(p + 4);
    m->samples_per_block = p[8];
    m->streaming = p[9] ? 1u : 0u;
    m->max_frame_size = rd_u16(p + 10);
    return KS_OK;
}

KS_BUILD(ks_build_stream_config, ks_encode_stream_config, KS_MSG_STREAM_CONFIG, ks_stream_config)

/* -- SampleBlock -- */

static int encoding_ok(unsigned e) { return e == 2u || e == 3u || e == 4u; }

static int sample_fits(int32_t v, unsigned e)
{
    if (e == 2u) {
        return v >= -32768 && v <= 32767;
    }
    if (e == 3u) {
        return v >= -8388608L && v <= 8388607L;
    }
    return 1;
}

static void w_sample(writer *w, int32_t v, unsigned e)
{
    uint32_t u = (uint32_t)v;
    unsigned k;
    for (k = 0; k < e; k++) {
        w_u8(w, (u >> (8u * k)) & 0xFFu);
    }
}

static void w_block_head(writer *w, const ks_sample_block *m, uint8_t n_samples)
{
    w_u32(w, m->t_first_us);
    w_u32(w, m->sample_index);
    w_u32(w, m->period_ns);
    w_u8(w, m->channel_mask);
    w_u8(w, m->encoding);
    w_u8(w, m->flags);
    w_u8(w, m->saturated_mask);
    w_u8(w, m->fault_mask);
    w_u8(w, n_samples);
}

ks_result ks_encode_sample_block(const ks_sample_block *m, uint8_t *out, size_t cap, size_t *len)
{
    writer w;
    size_t count;
    size_t i;
    unsigned e;
    if (m == NULL) {
        return KS_ERR_ARG;
    }
    e = m->encoding;
    count = (size_t)m->n_samples * ks_popcount8(m->channel_mask);
    if (!encoding_ok(e)) {
        return KS_ERR_RANGE;
    }
    if (count && m->samples == NULL) {
        return KS_ERR_ARG;
    }
    for (i = 0; i < count; i++) {
        if (!sample_fits(m->samples[i], e)) {
            return KS_ERR_RANGE;
        }
    }
    w_init(&w, out, cap);
    w_block_head(&w, m, m->n_samples);
    for (i = 0; i < count && !w.overflow; i++) {
        w_sample(&w, m->samples[i], e);
    }
    return w_done(&w, len);
}

static ks_result sample_block_check(const uint8_t *p, size_t len)
{
    unsigned e;
    size_t size;
    if (len < KS_SAMPLE_BLOCK_HEAD_SIZE) {
        return KS_ERR_MESSAGE;
    }
    e = p[13];
    if (!encoding_ok(e)) {
        return KS_ERR_MESSAGE;
    }
    size = (size_t)p[17] * ks_popcount8(p[12]) * e;
    if (len - KS_SAMPLE_BLOCK_HEAD_SIZE < size) {
        return KS_ERR_MESSAGE;
    }
    return KS_OK;
}

ks_result ks_decode_sample_block(const uint8_t *p, size_t len, ks_sample_block *m)
{
    ks_result r;
    if ((p == NULL && len) || m == NULL) {
        return KS_ERR_ARG;
    }
    r = sample_block_check(p, len);
    if (r != KS_OK) {
        return r;
    }
    m->t_first_us = rd_u32(p);
    m->sample_index = rd_u32(p + 4);
    m->period_ns = rd_u32(p + 8);
    m->channel_mask = p[12];
    m->encoding = p[13];
    m->flags = p[14];
    m->saturated_mask = p[15];
    m->fault_mask = p[16];
    m->n_samples = p[17];
    m->samples = NULL;
    m->sample_bytes = p + KS_SAMPLE_BLOCK_HEAD_SIZE;
    return KS_OK;
}

static int32_t rd_sample(const uint8_t *q, unsigned e)
{
    if (e == 2u) {
        return rd_i16(q);
    }
    if (e == 3u) {
        uint32_t u = (uint32_t)q[0] | ((uint32_t)q[1] << 8) | ((uint32_t)q[2] << 16);
        return u & 0x800000u ? to_i32(u | 0xFF000000u) : (int32_t)u;
    }
    return rd_i32(q);
}

int32_t ks_block_value(const ks_sample_block *b, unsigned sample, unsigned channel)
{
    unsigned c;
    unsigned e;
    if (b == NULL || b->sample_bytes == NULL) {
        return 0;
    }
    c = ks_popcount8(b->channel_mask);
    e = b->encoding;
    if (!encoding_ok(e) || sample >= b->n_samples || channel >= c) {
        return 0;
    }
    return rd_sample(b->sample_bytes + ((size_t)sample * c + channel) * e, e);
}

KS_BUILD(ks_build_sample_block, ks_encode_sample_block, KS_MSG_SAMPLE_BLOCK, ks_sample_block)

unsigned ks_max_samples(size_t max_frame_size, unsigned n_channels, unsigned encoding)
{
    size_t room;
    size_t n;
    if (n_channels == 0u || encoding == 0u ||
        max_frame_size <= KS_FRAME_OVERHEAD + KS_SAMPLE_BLOCK_HEAD_SIZE) {
        return 0u;
    }
    room = max_frame_size - KS_FRAME_OVERHEAD - KS_SAMPLE_BLOCK_HEAD_SIZE;
    n = room / ((size_t)n_channels * encoding);
    return n > 255u ? 255u : (unsigned)n;
}

ks_result ks_block_begin(ks_block_builder *b, uint8_t *frame, size_t max_frame_size,
                         const ks_sample_block *head)
{
    writer w;
    unsigned c;
    unsigned cap;
    if (b == NULL || frame == NULL || head == NULL) {
        return KS_ERR_ARG;
    }
    c = ks_popcount8(head->channel_mask);
    if (c == 0u || !encoding_ok(head->encoding)) {
        return KS_ERR_RANGE;
    }
    if (max_frame_size > KS_MAX_FRAME_SIZE) {
        max_frame_size = KS_MAX_FRAME_SIZE;
    }
    cap = ks_max_samples(max_frame_size, c, head->encoding);
    if (cap == 0u) {
        return KS_ERR_SPACE;
    }
    w_init(&w, KS_PAYLOAD(frame), KS_SAMPLE_BLOCK_HEAD_SIZE);
    w_block_head(&w, head, 0u);
    b->frame = frame;
    b->max_frame_size = max_frame_size;
    b->pos = KS_HEADER_SIZE + KS_SAMPLE_BLOCK_HEAD_SIZE;
    b->channels = (uint8_t)c;
    b->encoding = head->encoding;
    b->n_samples = 0u;
    b->capacity = (uint8_t)cap;
    return KS_OK;
}

ks_result ks_block_add(ks_block_builder *b, const int32_t *values)
{
    writer w;
    unsigned i;
    if (b == NULL || values == NULL || b->frame == NULL) {
        return KS_ERR_ARG;
    }
    if (b->n_samples >= b->capacity) {
        return KS_ERR_SPACE;
    }
    for (i = 0; i < b->channels; i++) {
        if (!sample_fits(values[i], b->encoding)) {
            return KS_ERR_RANGE;
        }
    }
    w_init(&w, b->frame + b->pos, (size_t)b->channels * b->encoding);
    for (i = 0; i < b->channels; i++) {
        w_sample(&w, values[i], b->encoding);
    }
    b->pos += w.len;
    b->n_samples++;
    return KS_OK;
}

int ks_block_full(const ks_block_builder *b) { return b == NULL || b->n_samples >= b->capacity; }

void ks_block_mark(ks_block_builder *b, uint8_t saturated_mask, uint8_t fault_mask)
{
    if (b && b->frame) {
        uint8_t *p = KS_PAYLOAD(b->frame);
        p[15] = (uint8_t)(p[15] | saturated_mask);
        p[16] = (uint8_t)(p[16] | fault_mask);
    }
}

ks_result ks_block_finish(ks_block_builder *b, uint16_t seq, size_t *frame_len)
{
    if (b == NULL || b->frame == NULL) {
        return KS_ERR_ARG;
    }
    KS_PAYLOAD(b->frame)[17] = b->n_samples;
    return finish_frame(b->frame, KS_MSG_SAMPLE_BLOCK, seq, b->pos - KS_HEADER_SIZE, frame_len);
}

/* -- DeviceEvent -- */

ks_result ks_encode_device_event(const ks_device_event *m, uint8_t *out, size_t cap, size_t *len)
{
    writer w;
    if (m == NULL) {
        return KS_ERR_ARG;
    }
    w_init(&w, out, cap);
    w_u32(&w, m->t_us);
    w_u8(&w, m->code);
    w_u8(&w, m->arg);
    w_i32(&w, m->value);
    return w_done(&w, len);
}

ks_result ks_decode_device_event(const uint8_t *p, size_t len, ks_device_event *m)
{
    if ((p == NULL && len) || m == NULL) {
        return KS_ERR_ARG;
    }
    if (len < 10u) {
        return KS_ERR_MESSAGE;
    }
    m->t_us = rd_u32(p);
    m->code = p[4];
    m->arg = p[5];
    m->value = rd_i32(p + 6);
    return KS_OK;
}

KS_BUILD(ks_build_device_event, ks_encode_device_event, KS_MSG_DEVICE_EVENT, ks_device_event)

/* -- Status -- */

ks_result ks_encode_status(const ks_status *m, uint8_t *out, size_t cap, size_t *len)
{
    writer w;
    if (m == NULL) {
        return KS_ERR_ARG;
    }
    w_init(&w, out, cap);
    w_u32(&w, m->t_us);
    w_u32(&w, m->uptime_s);
    w_u16(&w, m->battery_mv);
    w_u8(&w, m->battery_pct);
    w_u8(&w, m->flags);
    w_i16(&w, m->temperature_cdeg);
    w_u8(&w, m->reset_reason);
    w_u32(&w, m->frames_sent);
    w_u32(&w, m->frames_dropped);
    w_u32(&w, m->rx_crc_errors);
    w_u32(&w, m->rx_framing_errors);
    w_u32(&w, m->sensor_faults);
    return w_done(&w, len);
}

ks_result ks_decode_status(const uint8_t *p, size_t len, ks_status *m)
{
    if ((p == NULL && len) || m == NULL) {
        return KS_ERR_ARG;
    }
    if (len < 35u) {
        return KS_ERR_MESSAGE;
    }
    m->t_us = rd_u32(p);
    m->uptime_s = rd_u32(p + 4);
    m->battery_mv = rd_u16(p + 8);
    m->battery_pct = p[10];
    m->flags = p[11];
    m->temperature_cdeg = rd_i16(p + 12);
    m->reset_reason = p[14];
    m->frames_sent = rd_u32(p + 15);
    m->frames_dropped = rd_u32(p + 19);
    m->rx_crc_errors = rd_u32(p + 23);
    m->rx_framing_errors = rd_u32(p + 27);
    m->sensor_faults = rd_u32(p + 31);
    return KS_OK;
}

KS_BUILD(ks_build_status, ks_encode_status, KS_MSG_STATUS, ks_status)

/* -- LogText -- */

ks_result ks_encode_log_text(const ks_log_text *m, uint8_t *out, size_t cap, size_t *len)
{
    writer w;
    if (m == NULL || (m->text == NULL && m->text_len)) {
        return KS_ERR_ARG;
    }
    w_init(&w, out, cap);
    w_u8(&w, m->level);
    w_bytes(&w, (const uint8_t *)m->text, m->text_len);
    return w_done(&w, len);
}

ks_result ks_decode_log_text(const uint8_t *p, size_t len, ks_log_text *m)
{
    if ((p == NULL && len) || m == NULL) {
        return KS_ERR_ARG;
    }
    if (len < 1u) {
        return KS_ERR_MESSAGE;
    }
    m->level = p[0];
    m->text = (const char *)(p + 1);
    m->text_len = len - 1u;
    return KS_OK;
}

KS_BUILD(ks_build_log_text, ks_encode_log_text, KS_MSG_LOG_TEXT, ks_log_text)

/* ------------------------------------------------------------------------ */
/* Thresholds and the load index                                             */

ks_result ks_encode_thresholds(const ks_thresholds *t, uint8_t *out, size_t cap, size_t *len)
{
    writer w;
    unsigned i;
    if (t == NULL) {
        return KS_ERR_ARG;
    }
    if (t->channel_count > KS_MAX_CHANNELS) {
        return KS_ERR_RANGE;
    }
    w_init(&w, out, cap);
    w_u8(&w, t->flags);
    w_u8(&w, t->channel_count);
    w_u16(&w, t->debounce_ms);
    w_u16(&w, t->hold_s);
    w_i32(&w, t->release_on);
    w_i32(&w, t->release_off);
    w_i32(&w, t->overpressure_on);
    for (i = 0; i < t->channel_count; i++) {
        w_i32(&w, t->channels[i].zero);
        w_i32(&w, t->channels[i].weight_q16);
    }
    return w_done(&w, len);
}

static ks_result thresholds_check(const uint8_t *p, size_t len)
{
    if (len < KS_THRESHOLDS_HEAD_SIZE) {
        return KS_ERR_MESSAGE;
    }
    if (len - KS_THRESHOLDS_HEAD_SIZE < 8u * (size_t)p[1]) {
        return KS_ERR_MESSAGE;
    }
    return KS_OK;
}

ks_result ks_decode_thresholds(const uint8_t *p, size_t len, ks_thresholds *t)
{
    ks_result r;
    unsigned i;
    if ((p == NULL && len) || t == NULL) {
        return KS_ERR_ARG;
    }
    r = thresholds_check(p, len);
    if (r != KS_OK) {
        return r;
    }
    if (p[1] > KS_MAX_CHANNELS) {
        return KS_ERR_CAPACITY;
    }
    t->flags = p[0];
    t->channel_count = p[1];
    t->debounce_ms = rd_u16(p + 2);
    t->hold_s = rd_u16(p + 4);
    t->release_on = rd_i32(p + 6);
    t->release_off = rd_i32(p + 10);
    t->overpressure_on = rd_i32(p + 14);
    for (i = 0; i < t->channel_count; i++) {
        t->channels[i].zero = rd_i32(p + KS_THRESHOLDS_HEAD_SIZE + 8u * i);
        t->channels[i].weight_q16 = rd_i32(p + KS_THRESHOLDS_HEAD_SIZE + 8u * i + 4u);
    }
    return KS_OK;
}

int64_t ks_asr16(int64_t x)
{
    /* For negative x, ~x = -x - 1 is non-negative: shift that and invert
     * back. This is floor(x / 65536), what Python's >> does. */
    return x < 0 ? ~(~x >> 16) : x >> 16;
}

int64_t ks_load_index(const ks_thresholds *t, const int32_t *raw)
{
    uint64_t sum = 0u;
    unsigned i;
    if (t == NULL || raw == NULL) {
        return 0;
    }
    for (i = 0; i < t->channel_count && i < KS_MAX_CHANNELS; i++) {
        /* |raw - zero| < 2^32 and |weight| <= 2^31: the product fits int64. */
        int64_t diff = (int64_t)raw[i] - (int64_t)t->channels[i].zero;
        int64_t prod = diff * (int64_t)t->channels[i].weight_q16;
        sum += (uint64_t)prod; /* unsigned: wraps instead of overflowing */
    }
    return ks_asr16(to_i64(sum));
}

/* ------------------------------------------------------------------------ */
/* Commands and responses                                                    */

static int opcode_known(uint8_t op) { return op >= KS_OP_PING && op <= KS_OP_GET_STATUS; }

ks_result ks_parse_command(const uint8_t *p, size_t len, ks_command *cmd)
{
    const uint8_t *a;
    size_t n;
    if ((p == NULL && len) || cmd == NULL) {
        return KS_ERR_ARG;
    }
    memset(cmd, 0, sizeof *cmd);
    if (len < KS_COMMAND_HEAD_SIZE) {
        cmd->request_id = (uint16_t)KS_UNREADABLE_REQUEST_ID;
        cmd->opcode = (uint8_t)KS_UNREADABLE_OPCODE;
        return KS_ERR_MESSAGE;
    }
    cmd->request_id = rd_u16(p);
    cmd->opcode = p[2];
    cmd->known = (uint8_t)opcode_known(p[2]);
    a = p + KS_COMMAND_HEAD_SIZE;
    n = len - KS_COMMAND_HEAD_SIZE;
    cmd->raw_args = a;
    cmd->raw_args_len = n;
    switch (cmd->opcode) {
    case KS_OP_PING:
        if (n > KS_MAX_PING_DATA) {
            return KS_ERR_MESSAGE;
        }
        cmd->arg.ping.data = a;
        cmd->arg.ping.len = n;
        return KS_OK;
    case KS_OP_SET_STREAM_CONFIG:
        if (n < 4u) {
            return KS_ERR_MESSAGE;
        }
        cmd->arg.set_stream_config.rate_hz = rd_u16(a);
        cmd->arg.set_stream_config.channel_mask = a[2];
        cmd->arg.set_stream_config.encoding = a[3];
        return KS_OK;
    case KS_OP_TARE:
        if (n < 3u) {
            return KS_ERR_MESSAGE;
        }
        cmd->arg.tare.channel_mask = a[0];
        cmd->arg.tare.n_samples = rd_u16(a + 1);
        return KS_OK;
    case KS_OP_READ_CALIBRATION:
        if (n < 3u) {
            return KS_ERR_MESSAGE;
        }
        cmd->arg.read_calibration.offset = rd_u16(a);
        cmd->arg.read_calibration.max_length = a[2];
        return KS_OK;
    case KS_OP_WRITE_CALIBRATION:
        if (n < 4u) {
            return KS_ERR_MESSAGE;
        }
        cmd->arg.write_calibration.offset = rd_u16(a);
        cmd->arg.write_calibration.total_length = rd_u16(a + 2);
        cmd->arg.write_calibration.data = a + 4;
        cmd->arg.write_calibration.len = n - 4u;
        return KS_OK;
    case KS_OP_COMMIT_CALIBRATION:
        if (n < 8u) {
            return KS_ERR_MESSAGE;
        }
        cmd->arg.commit_calibration.calibration_id = rd_u32(a);
        cmd->arg.commit_calibration.total_length = rd_u16(a + 4);
        cmd->arg.commit_calibration.crc = rd_u16(a + 6);
        return KS_OK;
    case KS_OP_WRITE_THRESHOLDS:
        return ks_decode_thresholds(a, n, &cmd->arg.write_thresholds);
    default:
        return KS_OK; /* no arguments, or an unknown opcode */
    }
}

ks_result ks_encode_command(const ks_command *cmd, uint8_t *out, size_t cap, size_t *len)
{
    writer w;
    size_t n = 0u;
    if (cmd == NULL) {
        return KS_ERR_ARG;
    }
    w_init(&w, out, cap);
    w_u16(&w, cmd->request_id);
    w_u8(&w, cmd->opcode);
    switch (cmd->opcode) {
    case KS_OP_PING:
        if (cmd->arg.ping.len > KS_MAX_PING_DATA) {
            return KS_ERR_RANGE;
        }
        w_bytes(&w, cmd->arg.ping.data, cmd->arg.ping.len);
        break;
    case KS_OP_SET_STREAM_CONFIG:
        w_u16(&w, cmd->arg.set_stream_config.rate_hz);
        w_u8(&w, cmd->arg.set_stream_config.channel_mask);
        w_u8(&w, cmd->arg.set_stream_config.encoding);
        break;
    case KS_OP_TARE:
        w_u8(&w, cmd->arg.tare.channel_mask);
        w_u16(&w, cmd->arg.tare.n_samples);
        break;
    case KS_OP_READ_CALIBRATION:
        w_u16(&w, cmd->arg.read_calibration.offset);
        w_u8(&w, cmd->arg.read_calibration.max_length);
        break;
    case KS_OP_WRITE_CALIBRATION:
        w_u16(&w, cmd->arg.write_calibration.offset);
        w_u16(&w, cmd->arg.write_calibration.total_length);
        w_bytes(&w, cmd->arg.write_calibration.data, cmd->arg.write_calibration.len);
        break;
    case KS_OP_COMMIT_CALIBRATION:
        w_u32(&w, cmd->arg.commit_calibration.calibration_id);
        w_u16(&w, cmd->arg.commit_calibration.total_length);
        w_u16(&w, cmd->arg.commit_calibration.crc);
        break;
    case KS_OP_WRITE_THRESHOLDS: {
        ks_result r;
        if (w.overflow) {
            return KS_ERR_SPACE;
        }
        r = ks_encode_thresholds(&cmd->arg.write_thresholds, out + w.len, cap - w.len, &n);
        if (r != KS_OK) {
            return r;
        }
        w.len += n;
        break;
    }
    default:
        if (!opcode_known(cmd->opcode)) {
            w_bytes(&w, cmd->raw_args, cmd->raw_args_len);
        }
        break;
    }
    return w_done(&w, len);
}

ks_result ks_encode_response(const ks_response *r, uint8_t *out, size_t cap, size_t *len)
{
    writer w;
    if (r == NULL || (r->result == NULL && r->result_len)) {
        return KS_ERR_ARG;
    }
    w_init(&w, out, cap);
    w_u16(&w, r->request_id);
    w_u8(&w, r->opcode);
    w_u8(&w, r->status);
    w_bytes(&w, r->result, r->result_len);
    return w_done(&w, len);
}

ks_result ks_decode_response(const uint8_t *p, size_t len, ks_response *r)
{
    if ((p == NULL && len) || r == NULL) {
        return KS_ERR_ARG;
    }
    if (len < KS_RESPONSE_HEAD_SIZE) {
        return KS_ERR_MESSAGE;
    }
    r->request_id = rd_u16(p);
    r->opcode = p[2];
    r->status = p[3];
    r->result = p + KS_RESPONSE_HEAD_SIZE;
    r->result_len = len - KS_RESPONSE_HEAD_SIZE;
    return KS_OK;
}

static ks_result build_response_raw(uint8_t *frame, size_t cap, uint16_t seq, uint16_t request_id,
                                    uint8_t opcode, uint8_t status, const uint8_t *result,
                                    size_t result_len, size_t *frame_len)
{
    uint8_t *p;
    if (frame == NULL || (result == NULL && result_len)) {
        return KS_ERR_ARG;
    }
    if (result_len > KS_MAX_PAYLOAD_SIZE - KS_RESPONSE_HEAD_SIZE) {
        return KS_ERR_RANGE;
    }
    if (cap < result_len + KS_RESPONSE_OVERHEAD) {
        return KS_ERR_SPACE;
    }
    if (result_len && result != KS_RESPONSE_RESULT(frame)) {
        memmove(KS_RESPONSE_RESULT(frame), result, result_len);
    }
    p = KS_PAYLOAD(frame);
    p[0] = (uint8_t)(request_id & 0xFFu);
    p[1] = (uint8_t)(request_id >> 8);
    p[2] = opcode;
    p[3] = status;
    return finish_frame(frame, KS_MSG_RESPONSE, seq, KS_RESPONSE_HEAD_SIZE + result_len,
                        frame_len);
}

ks_result ks_build_response(uint8_t *frame, size_t cap, uint16_t seq, const ks_command *cmd,
                            uint8_t status, const uint8_t *result, size_t result_len,
                            size_t *frame_len)
{
    if (cmd == NULL) {
        return KS_ERR_ARG;
    }
    return build_response_raw(frame, cap, seq, cmd->request_id, cmd->opcode, status, result,
                              result_len, frame_len);
}

ks_result ks_build_response_error(uint8_t *frame, size_t cap, uint16_t seq,
                                  const ks_command *cmd, uint8_t status, size_t *frame_len)
{
    return ks_build_response(frame, cap, seq, cmd, status, NULL, 0u, frame_len);
}

ks_result ks_build_unreadable_response(uint8_t *frame, size_t cap, uint16_t seq,
                                       size_t *frame_len)
{
    return build_response_raw(frame, cap, seq, (uint16_t)KS_UNREADABLE_REQUEST_ID,
                              (uint8_t)KS_UNREADABLE_OPCODE, KS_STATUS_MALFORMED, NULL, 0u,
                              frame_len);
}

ks_result ks_encode_tare_result(const ks_tare_result *r, uint8_t *out, size_t cap, size_t *len)
{
    writer w;
    unsigned i;
    unsigned n;
    if (r == NULL) {
        return KS_ERR_ARG;
    }
    n = ks_popcount8(r->channel_mask);
    w_init(&w, out, cap);
    w_u8(&w, r->channel_mask);
    for (i = 0; i < n; i++) {
        w_i32(&w, r->zeros[i]);
    }
    return w_done(&w, len);
}

ks_result ks_decode_tare_result(const uint8_t *p, size_t len, ks_tare_result *r)
{
    unsigned i;
    unsigned n;
    if ((p == NULL && len) || r == NULL) {
        return KS_ERR_ARG;
    }
    if (len < 1u) {
        return KS_ERR_MESSAGE;
    }
    n = ks_popcount8(p[0]);
    if (len - 1u < 4u * n) {
        return KS_ERR_MESSAGE;
    }
    r->channel_mask = p[0];
    for (i = 0; i < 8u; i++) {
        r->zeros[i] = i < n ? rd_i32(p + 1u + 4u * i) : 0;
    }
    return KS_OK;
}

ks_result ks_encode_calibration_chunk(const ks_calibration_chunk *c, uint8_t *out, size_t cap,
                                      size_t *len)
{
    writer w;
    if (c == NULL || (c->data == NULL && c->data_len)) {
        return KS_ERR_ARG;
    }
    w_init(&w, out, cap);
    w_u32(&w, c->calibration_id);
    w_u16(&w, c->total_length);
    w_u16(&w, c->offset);
    w_bytes(&w, c->data, c->data_len);
    return w_done(&w, len);
}

ks_result ks_decode_calibration_chunk(const uint8_t *p, size_t len, ks_calibration_chunk *c)
{
    if ((p == NULL && len) || c == NULL) {
        return KS_ERR_ARG;
    }
    if (len < 8u) {
        return KS_ERR_MESSAGE;
    }
    c->calibration_id = rd_u32(p);
    c->total_length = rd_u16(p + 4);
    c->offset = rd_u16(p + 6);
    c->data = p + 8;
    c->data_len = len - 8u;
    return KS_OK;
}

/* ------------------------------------------------------------------------ */
/* Acceptance check, as the Python decoders                                  */

static ks_result command_check(const uint8_t *p, size_t len)
{
    ks_command cmd;
    ks_result r = ks_parse_command(p, len, &cmd);
    /* Capacity is a limit of the struct, not of the wire: the reference
     * accepts any channel count that the payload carries. */
    return r == KS_ERR_CAPACITY ? KS_OK : r;
}

ks_result ks_check_message(uint8_t type, const uint8_t *p, size_t len)
{
    if (p == NULL && len) {
        return KS_ERR_ARG;
    }
    switch (type) {
    case KS_MSG_DEVICE_INFO:
        return device_info_walk(p, len, NULL);
    case KS_MSG_STREAM_CONFIG:
        return len < 12u ? KS_ERR_MESSAGE : KS_OK;
    case KS_MSG_SAMPLE_BLOCK:
        return sample_block_check(p, len);
    case KS_MSG_DEVICE_EVENT:
        return len < 10u ? KS_ERR_MESSAGE : KS_OK;
    case KS_MSG_STATUS:
        return len < 35u ? KS_ERR_MESSAGE : KS_OK;
    case KS_MSG_LOG_TEXT:
        return len < 1u ? KS_ERR_MESSAGE : KS_OK;
    case KS_MSG_COMMAND:
        return command_check(p, len);
    case KS_MSG_RESPONSE:
        return len < KS_RESPONSE_HEAD_SIZE ? KS_ERR_MESSAGE : KS_OK;
    default:
        return KS_OK;
    }
}
