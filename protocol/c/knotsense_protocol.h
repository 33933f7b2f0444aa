/*
 * knotsense_protocol.h -- protocol v1 for device firmware (C99).
 *
 * A portable implementation of the knotsense wire format (docs/protocol.md is
 * normative; knotsense.protocol in Python is the reference this code is tested
 * against byte for byte). No malloc, no stdio, no global state: every buffer
 * is the caller's. Only <stddef.h>, <stdint.h> and <string.h> are used.
 *
 * Conventions
 *   - Functions that can fail return a ks_result: KS_OK (0) or a negative
 *     KS_ERR_* code. Lengths come back through a size_t pointer.
 *   - "payload" means the bytes of one message (what Python's
 *     Message.encode() returns); "frame" means header + payload + CRC
 *     (unencoded, as one BLE notification carries it); "stuffed" means a frame
 *     COBS-encoded and followed by the 0x00 delimiter (serial, pty).
 *   - All integers are little-endian on the wire (the CRC is big-endian); the
 *     code packs bytes explicitly and never casts buffers to structs, so it
 *     runs on any endianness and alignment.
 *   - Decoders never write to their input; decoded structs may point into it
 *     (strings, raw sample bytes, result bytes), so keep the input alive.
 *
 * Build-time options (define before including, or with -D):
 *   KS_MAX_CHANNELS  channels a Thresholds / DeviceInfo struct holds (8)
 *   KS_MAX_RATES     sample rates a DeviceInfo struct holds (16)
 */
#ifndef KNOTSENSE_PROTOCOL_H
#define KNOTSENSE_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Sizes                                                                    */

#define KS_PROTOCOL_VERSION 1u
#define KS_PROTOCOL_MINOR 1u
#define KS_HEADER_SIZE 6u
#define KS_CRC_SIZE 2u
#define KS_FRAME_OVERHEAD (KS_HEADER_SIZE + KS_CRC_SIZE) /* 8 */
#define KS_MAX_FRAME_SIZE 244u                            /* one notification at MTU 247 */
#define KS_MAX_PAYLOAD_SIZE (KS_MAX_FRAME_SIZE - KS_FRAME_OVERHEAD) /* 236 */
#define KS_MIN_FRAME_SIZE 20u /* smallest frame limit a device must support (MTU 23) */
/* Longest COBS encoding of n bytes, without the delimiter. */
#define KS_COBS_MAX_ENCODED(n) ((n) + 1u + (n) / 254u)
#define KS_MAX_ENCODED_SIZE KS_COBS_MAX_ENCODED(KS_MAX_FRAME_SIZE) /* 245 */
/* Bytes of a buffer that holds any stuffed frame (COBS + delimiter). */
#define KS_MAX_STUFFED_SIZE (KS_MAX_ENCODED_SIZE + 1u) /* 246 */

#define KS_SAMPLE_BLOCK_HEAD_SIZE 18u
#define KS_COMMAND_HEAD_SIZE 3u
#define KS_RESPONSE_HEAD_SIZE 4u
#define KS_THRESHOLDS_HEAD_SIZE 18u
#define KS_MAX_PING_DATA 64u
#define KS_CALIBRATION_CAPACITY 4096u
#define KS_UNREADABLE_REQUEST_ID 0xFFFFu
#define KS_UNREADABLE_OPCODE 0xFFu

/* Where a message's payload starts inside a frame buffer. */
#define KS_PAYLOAD(frame) ((frame) + KS_HEADER_SIZE)
/* Where a response's result starts inside a frame buffer. */
#define KS_RESPONSE_RESULT(frame) ((frame) + KS_HEADER_SIZE + KS_RESPONSE_HEAD_SIZE)
/* Bytes of a frame buffer around a response result (header, response head, CRC). */
#define KS_RESPONSE_OVERHEAD (KS_FRAME_OVERHEAD + KS_RESPONSE_HEAD_SIZE) /* 12 */

#ifndef KS_MAX_CHANNELS
#define KS_MAX_CHANNELS 8
#endif
#ifndef KS_MAX_RATES
#define KS_MAX_RATES 16
#endif

/* ------------------------------------------------------------------------ */
/* Codes                                                                    */

typedef enum ks_result {
    KS_OK = 0,
    KS_ERR_ARG = -1,      /* a NULL pointer or an impossible argument */
    KS_ERR_SPACE = -2,    /* the output buffer is too small */
    KS_ERR_FRAMING = -3,  /* broken COBS, frame too short/long, length field wrong */
    KS_ERR_CRC = -4,      /* CRC mismatch */
    KS_ERR_VERSION = -5,  /* another protocol major version */
    KS_ERR_MESSAGE = -6,  /* payload too short or malformed for its type */
    KS_ERR_RANGE = -7,    /* a value does not fit its wire field */
    KS_ERR_CAPACITY = -8, /* valid on the wire, but more entries than the struct holds */
    KS_ERR_OVERSIZE = -9  /* stream: a run with no delimiter longer than any frame */
} ks_result;

enum ks_msg_type {
    KS_MSG_DEVICE_INFO = 0x01,
    KS_MSG_STREAM_CONFIG = 0x02,
    KS_MSG_SAMPLE_BLOCK = 0x03,
    KS_MSG_DEVICE_EVENT = 0x04,
    KS_MSG_STATUS = 0x05,
    KS_MSG_LOG_TEXT = 0x06,
    KS_MSG_COMMAND = 0x10,
    KS_MSG_RESPONSE = 0x11
};

enum ks_sensor_kind {
    KS_SENSOR_UNKNOWN = 0,
    KS_SENSOR_LOAD_CELL = 1,
    KS_SENSOR_FSR = 2,
    KS_SENSOR_BAROMETRIC = 3,
    KS_SENSOR_CAPACITIVE = 4
};

enum ks_sample_unit { KS_UNIT_COUNTS = 0, KS_UNIT_MILLINEWTON = 1 };

/* Sample encoding; the value is the number of bytes per sample (signed LE). */
enum ks_encoding { KS_INT16 = 2, KS_INT24 = 3, KS_INT32 = 4 };

enum ks_block_flags { KS_BLOCK_OVERFLOW_BEFORE = 0x01 };

enum ks_event_code {
    KS_EVENT_RELEASE_ENTER = 1,
    KS_EVENT_RELEASE_EXIT = 2,
    KS_EVENT_RELEASE_HOLD_REACHED = 3,
    KS_EVENT_OVERPRESSURE_ENTER = 4,
    KS_EVENT_OVERPRESSURE_EXIT = 5,
    KS_EVENT_BUTTON_PRESS = 6,
    KS_EVENT_BUTTON_RELEASE = 7,
    KS_EVENT_BOOT = 8,
    KS_EVENT_BUFFER_OVERFLOW = 9,
    KS_EVENT_SENSOR_FAULT = 10
};

enum ks_reset_reason {
    KS_RESET_POWER_ON = 0,
    KS_RESET_SOFTWARE = 1,
    KS_RESET_WATCHDOG = 2,
    KS_RESET_BROWNOUT = 3,
    KS_RESET_PIN = 4
};

enum ks_status_flags {
    KS_STATUS_FLAG_STREAMING = 0x01,
    KS_STATUS_FLAG_CHARGING = 0x02,
    KS_STATUS_FLAG_USB_POWER = 0x04,
    KS_STATUS_FLAG_CALIBRATED = 0x08
};

enum ks_opcode {
    KS_OP_PING = 0x01,
    KS_OP_GET_INFO = 0x02,
    KS_OP_START_STREAM = 0x03,
    KS_OP_STOP_STREAM = 0x04,
    KS_OP_SET_STREAM_CONFIG = 0x05,
    KS_OP_GET_STREAM_CONFIG = 0x06,
    KS_OP_TARE = 0x07,
    KS_OP_READ_CALIBRATION = 0x08,
    KS_OP_WRITE_CALIBRATION = 0x09,
    KS_OP_COMMIT_CALIBRATION = 0x0A,
    KS_OP_READ_THRESHOLDS = 0x0B,
    KS_OP_WRITE_THRESHOLDS = 0x0C,
    KS_OP_REBOOT = 0x0D,
    KS_OP_GET_STATUS = 0x0E
};

/* Response status codes. */
enum ks_status_code {
    KS_STATUS_OK = 0,
    KS_STATUS_UNKNOWN_COMMAND = 1,
    KS_STATUS_BAD_ARGUMENT = 2,
    KS_STATUS_INVALID_STATE = 3,
    KS_STATUS_UNSUPPORTED = 4,
    KS_STATUS_NVM_ERROR = 5,
    KS_STATUS_CHECKSUM_MISMATCH = 6,
    KS_STATUS_INTERNAL_ERROR = 7,
    KS_STATUS_MALFORMED = 8
};

enum ks_threshold_flags { KS_THRESH_RELEASE_ENABLED = 0x01, KS_THRESH_OVERPRESSURE_ENABLED = 0x02 };

/* ------------------------------------------------------------------------ */
/* CRC-16/IBM-3740 and COBS                                                 */

#define KS_CRC_INIT 0xFFFFu

/* CRC-16/IBM-3740 (poly 0x1021, init 0xFFFF, no reflection, no xorout) of
 * data, continuing from crc (pass KS_CRC_INIT to start). Check: "123456789"
 * gives 0x29B1. Over a whole frame including its CRC the result is 0. */
uint16_t ks_crc16(const uint8_t *data, size_t len, uint16_t crc);

/* COBS-encode in[0..len) into out (no delimiter). in and out must not overlap.
 * Needs KS_COBS_MAX_ENCODED(len) bytes of room at most. */
ks_result ks_cobs_encode(const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *out_len);

/* Decode one COBS-encoded frame (without its delimiter). KS_ERR_FRAMING for a
 * zero byte inside or a code running past the end. out may equal in. */
ks_result ks_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *out_len);

/* ------------------------------------------------------------------------ */
/* Frames                                                                   */

typedef struct ks_frame {
    uint8_t version;
    uint8_t type;           /* enum ks_msg_type */
    uint16_t seq;
    const uint8_t *payload; /* points into the frame bytes */
    size_t payload_len;
} ks_frame;

/* Build a frame: header, payload, CRC. payload may already sit at
 * KS_PAYLOAD(frame) (then nothing is copied) or anywhere else (it is moved).
 * KS_ERR_RANGE when payload_len > KS_MAX_PAYLOAD_SIZE. */
ks_result ks_build_frame(uint8_t *frame, size_t cap, uint8_t type, uint16_t seq,
                         const uint8_t *payload, size_t payload_len, size_t *frame_len);

/* Check and split one unencoded frame (a BLE packet). Errors in the order of
 * the Python reference: too short/long (FRAMING), CRC, VERSION, length field
 * (FRAMING). out->payload points into data. */
ks_result ks_parse_frame(const uint8_t *data, size_t len, ks_frame *out);

/* COBS-encode a frame and append the 0x00 delimiter (the bytes a UART sends).
 * out needs KS_MAX_STUFFED_SIZE bytes for any frame. */
ks_result ks_stuff_frame(const uint8_t *frame, size_t frame_len, uint8_t *out, size_t cap,
                         size_t *out_len);

/* Largest frame one BLE notification carries at att_mtu (MTU - 3, within
 * KS_MIN_FRAME_SIZE..KS_MAX_FRAME_SIZE). */
size_t ks_frame_size_for_mtu(uint16_t att_mtu);

/* ------------------------------------------------------------------------ */
/* Incremental stream decoder (COBS byte stream, one byte at a time)          */

typedef struct ks_stream_stats {
    uint32_t bytes_in;        /* bytes fed */
    uint32_t frames;          /* frames that passed COBS, CRC, version and length checks */
    uint32_t bytes_discarded; /* encoded bytes that did not become a frame */
    uint32_t crc_errors;
    uint32_t framing_errors;  /* broken COBS, too short, length field wrong */
    uint32_t oversize;        /* runs longer than KS_MAX_ENCODED_SIZE */
    uint32_t version_errors;
} ks_stream_stats;

typedef struct ks_stream_decoder {
    uint8_t buf[KS_MAX_FRAME_SIZE]; /* the decoded frame being assembled */
    uint16_t len;                   /* decoded bytes in buf */
    uint16_t enc_len;               /* encoded bytes of the current run */
    uint16_t crc;                   /* running CRC of buf[0..len) */
    uint8_t code;                   /* current COBS code */
    uint8_t remaining;              /* data bytes left in the current COBS block */
    uint8_t skipping;               /* inside an oversize run: drop up to the next 0x00 */
    ks_stream_stats stats;
} ks_stream_decoder;

/* Reset to the initial state (also clears the counters). */
void ks_stream_init(ks_stream_decoder *d);

/* Feed one byte. Returns 1 when the byte (a 0x00) completes a good frame:
 * *out then describes it, its payload pointing into d (valid until the next
 * call). Returns 0 when more bytes are needed, or a negative ks_result when
 * a run was dropped (KS_ERR_FRAMING, KS_ERR_CRC, KS_ERR_VERSION,
 * KS_ERR_OVERSIZE; counted in d->stats). Never fails otherwise: after any
 * garbage it resynchronises at the next 0x00. Constant time per byte except
 * at a 0x00 (header and length checks only; the CRC is computed on the fly),
 * so it can run in a UART receive interrupt. */
int ks_stream_feed(ks_stream_decoder *d, uint8_t byte, ks_frame *out);

/* Sequence-number tracking of one sender, exactly as the Python decoders do
 * it: a repeat of the previous number is a duplicate (drop it), a jump ahead
 * of less than 0x8000 is a gap (frames lost), anything else is a reset. */
typedef struct ks_seq_tracker {
    uint16_t last;
    uint8_t has_last;
} ks_seq_tracker;

enum ks_seq_kind { KS_SEQ_NEXT = 0, KS_SEQ_GAP = 1, KS_SEQ_DUPLICATE = 2, KS_SEQ_RESET = 3 };

void ks_seq_init(ks_seq_tracker *t);
/* Returns an enum ks_seq_kind; *lost (may be NULL) gets the frames missing. */
int ks_seq_observe(ks_seq_tracker *t, uint16_t seq, uint16_t *lost);

/* ------------------------------------------------------------------------ */
/* BLE link layer v1.1: frames in fragments (docs/protocol.md section 6.2)    */
/*
 *   header byte: bit 7 S (start), bit 6 E (end), bits 5..4 reserved (0),
 *                bits 3..0 counter (+1 per fragment, mod 16, per characteristic
 *                and direction, 0 at every connection)
 *   then 1 .. ATT_MTU - 4 bytes of the frame.
 *
 * A device offers the link characteristic (KS_LINK_CHAR_UUID, value
 * KS_LINK_FRAGMENTS) when it speaks this layer. */

#define KS_FRAG_START 0x80u
#define KS_FRAG_END 0x40u
#define KS_FRAG_COUNTER_MASK 0x0Fu
#define KS_LINK_FRAGMENTS 1u
#define KS_MIN_V1_ATT_MTU 103u /* smallest usable MTU of a v1.0 (one frame per packet) link */
#define KS_LINK_CHAR_UUID "6b6e0004-7365-6e73-652d-6b6e6f747331"

/* Frame bytes one fragment carries at att_mtu (MTU - 4; MTU below 23 counts as 23). */
size_t ks_fragment_payload_size(uint16_t att_mtu);

typedef struct ks_fragmenter {
    uint8_t counter; /* the next fragment's counter */
} ks_fragmenter;

/* Counter back to 0 (a new connection). */
void ks_fragmenter_init(ks_fragmenter *f);

/* Write the fragment of frame[0..frame_len) that starts at *offset to out
 * (at most att_mtu - 3 bytes) and advance *offset; start with *offset = 0
 * and call while *offset < frame_len. KS_ERR_SPACE when cap is below the
 * fragment, KS_ERR_ARG for bad pointers, an empty frame or *offset at or
 * beyond the end. */
ks_result ks_fragment_next(ks_fragmenter *f, const uint8_t *frame, size_t frame_len,
                           size_t *offset, uint16_t att_mtu, uint8_t *out, size_t cap,
                           size_t *out_len);

typedef struct ks_fragment_stats {
    uint32_t fragments;       /* packets fed */
    uint32_t frames;          /* frames rebuilt */
    uint32_t fragments_lost;  /* counter gaps of 1..7, summed */
    uint32_t reordered;       /* fragments 8..15 behind */
    uint32_t frames_dropped;  /* partial frames abandoned */
    uint32_t orphans;         /* continue/end fragments with no frame being rebuilt */
    uint32_t oversize;        /* rebuilt frames longer than KS_MAX_FRAME_SIZE */
    uint32_t malformed;       /* packets shorter than 2 bytes */
    uint32_t bytes_discarded; /* frame bytes that did not reach a rebuilt frame */
} ks_fragment_stats;

typedef struct ks_reassembler {
    uint8_t buf[KS_MAX_FRAME_SIZE];
    uint16_t len;
    uint8_t active;       /* a frame is being rebuilt */
    uint8_t has_expected; /* a fragment was seen since the connection started */
    uint8_t expected;     /* the next counter */
    ks_fragment_stats stats;
} ks_reassembler;

/* Initial state, counters cleared. */
void ks_reassembler_init(ks_reassembler *r);

/* Feed one notification or write. Returns 1 when it completes a frame (*frame
 * points into r, valid until the next call; check it with ks_parse_frame), 0
 * otherwise. Never fails on input: losses are counted in r->stats and the
 * receiver resynchronises at the next start fragment. */
int ks_reassemble_feed(ks_reassembler *r, const uint8_t *packet, size_t len,
                       const uint8_t **frame, size_t *frame_len);

/* ------------------------------------------------------------------------ */
/* Messages (device -> host)                                                */

typedef struct ks_channel_info {
    uint8_t kind;   /* enum ks_sensor_kind */
    int16_t x_dmm;  /* position, 0.1 mm */
    int16_t y_dmm;
} ks_channel_info;

typedef struct ks_device_info {
    uint8_t protocol_major, protocol_minor;
    uint8_t fw_major, fw_minor;
    uint16_t fw_patch;
    uint8_t hw_revision;
    uint8_t adc_bits;
    uint8_t units; /* enum ks_sample_unit */
    uint32_t calibration_id;
    uint8_t rate_count;
    uint16_t sample_rates[KS_MAX_RATES];
    uint8_t channel_count;
    ks_channel_info channels[KS_MAX_CHANNELS];
    const char *serial_number; /* UTF-8, not NUL-terminated on decode */
    size_t serial_number_len;  /* <= 255 */
    const char *model;         /* may be NULL when model_len is 0 */
    size_t model_len;          /* <= 255 */
} ks_device_info;

typedef struct ks_stream_config {
    uint16_t rate_hz;
    uint8_t channel_mask;
    uint8_t encoding; /* enum ks_encoding */
    uint32_t period_ns;
    uint8_t samples_per_block;
    uint8_t streaming; /* 0 or 1 */
    uint16_t max_frame_size;
} ks_stream_config;

typedef struct ks_sample_block {
    uint32_t t_first_us;
    uint32_t sample_index;
    uint32_t period_ns;
    uint8_t channel_mask;
    uint8_t encoding; /* enum ks_encoding */
    uint8_t flags;    /* enum ks_block_flags */
    uint8_t saturated_mask;
    uint8_t fault_mask;
    uint8_t n_samples;
    /* encode: n_samples x popcount(channel_mask) values, sample-major */
    const int32_t *samples;
    /* decode: the raw sample bytes inside the payload (read with ks_block_value) */
    const uint8_t *sample_bytes;
} ks_sample_block;

typedef struct ks_device_event {
    uint32_t t_us;
    uint8_t code; /* enum ks_event_code */
    uint8_t arg;  /* 0xFF = not applicable */
    int32_t value;
} ks_device_event;

typedef struct ks_status {
    uint32_t t_us;
    uint32_t uptime_s;
    uint16_t battery_mv;
    uint8_t battery_pct; /* 0xFF = unknown */
    uint8_t flags;       /* enum ks_status_flags */
    int16_t temperature_cdeg;
    uint8_t reset_reason; /* enum ks_reset_reason */
    uint32_t frames_sent;
    uint32_t frames_dropped;
    uint32_t rx_crc_errors;
    uint32_t rx_framing_errors;
    uint32_t sensor_faults;
} ks_status;

typedef struct ks_log_text {
    uint8_t level; /* 10 debug, 20 info, 30 warning, 40 error */
    const char *text; /* UTF-8, not NUL-terminated on decode */
    size_t text_len;
} ks_log_text;

/* Payload encoders: write the payload of one message into out. */
ks_result ks_encode_device_info(const ks_device_info *m, uint8_t *out, size_t cap, size_t *len);
ks_result ks_encode_stream_config(const ks_stream_config *m, uint8_t *out, size_t cap, size_t *len);
/* KS_ERR_RANGE when a sample does not fit the encoding or the encoding is unknown. */
ks_result ks_encode_sample_block(const ks_sample_block *m, uint8_t *out, size_t cap, size_t *len);
ks_result ks_encode_device_event(const ks_device_event *m, uint8_t *out, size_t cap, size_t *len);
ks_result ks_encode_status(const ks_status *m, uint8_t *out, size_t cap, size_t *len);
ks_result ks_encode_log_text(const ks_log_text *m, uint8_t *out, size_t cap, size_t *len);

/* Frame builders: the message as a whole frame in frame[0..*frame_len). */
ks_result ks_build_device_info(uint8_t *frame, size_t cap, uint16_t seq, const ks_device_info *m,
                               size_t *frame_len);
ks_result ks_build_stream_config(uint8_t *frame, size_t cap, uint16_t seq,
                                 const ks_stream_config *m, size_t *frame_len);
ks_result ks_build_sample_block(uint8_t *frame, size_t cap, uint16_t seq,
                                const ks_sample_block *m, size_t *frame_len);
ks_result ks_build_device_event(uint8_t *frame, size_t cap, uint16_t seq,
                                const ks_device_event *m, size_t *frame_len);
ks_result ks_build_status(uint8_t *frame, size_t cap, uint16_t seq, const ks_status *m,
                          size_t *frame_len);
ks_result ks_build_log_text(uint8_t *frame, size_t cap, uint16_t seq, const ks_log_text *m,
                            size_t *frame_len);

/* Payload decoders (trailing bytes are ignored, as in the reference). */
ks_result ks_decode_device_info(const uint8_t *p, size_t len, ks_device_info *m);
ks_result ks_decode_stream_config(const uint8_t *p, size_t len, ks_stream_config *m);
ks_result ks_decode_sample_block(const uint8_t *p, size_t len, ks_sample_block *m);
ks_result ks_decode_device_event(const uint8_t *p, size_t len, ks_device_event *m);
ks_result ks_decode_status(const uint8_t *p, size_t len, ks_status *m);
ks_result ks_decode_log_text(const uint8_t *p, size_t len, ks_log_text *m);

/* Would the Python reference accept this payload for this frame type? (KS_OK
 * or KS_ERR_MESSAGE; unknown types are accepted.) Checks structure only:
 * no struct, so no capacity limits. */
ks_result ks_check_message(uint8_t type, const uint8_t *p, size_t len);

/* Number of channels in a mask. */
unsigned ks_popcount8(uint8_t mask);

/* Samples of one block that fit a frame of max_frame_size bytes (<= 255). */
unsigned ks_max_samples(size_t max_frame_size, unsigned n_channels, unsigned encoding);

/* Sample (s, c) of a decoded block, sign-extended. */
int32_t ks_block_value(const ks_sample_block *b, unsigned sample, unsigned channel);

/* Fill a SampleBlock frame in place, one sample at a time (no sample array). */
typedef struct ks_block_builder {
    uint8_t *frame;
    size_t max_frame_size;
    size_t pos;             /* next byte to write in frame */
    uint8_t channels;       /* popcount(channel_mask) */
    uint8_t encoding;
    uint8_t n_samples;
    uint8_t capacity;       /* samples that fit */
} ks_block_builder;

/* Start a block in frame[0..max_frame_size) from the header fields of *head
 * (samples, sample_bytes and n_samples are ignored). KS_ERR_RANGE for an
 * empty mask or unknown encoding, KS_ERR_SPACE when not one sample fits. */
ks_result ks_block_begin(ks_block_builder *b, uint8_t *frame, size_t max_frame_size,
                         const ks_sample_block *head);
/* Append one sample (popcount(mask) values, in channel order). KS_ERR_SPACE
 * when the block is full, KS_ERR_RANGE when a value does not fit (nothing is
 * written then). */
ks_result ks_block_add(ks_block_builder *b, const int32_t *values);
int ks_block_full(const ks_block_builder *b);
/* OR bits into the block's saturated and fault masks. */
void ks_block_mark(ks_block_builder *b, uint8_t saturated_mask, uint8_t fault_mask);
/* Finish: header, n_samples, CRC. The frame is then frame[0..*frame_len). */
ks_result ks_block_finish(ks_block_builder *b, uint16_t seq, size_t *frame_len);

/* ------------------------------------------------------------------------ */
/* Thresholds and the load index                                            */

typedef struct ks_channel_weight {
    int32_t zero;
    int32_t weight_q16;
} ks_channel_weight;

typedef struct ks_thresholds {
    uint8_t flags; /* enum ks_threshold_flags */
    uint8_t channel_count;
    uint16_t debounce_ms;
    uint16_t hold_s;
    int32_t release_on;
    int32_t release_off;
    int32_t overpressure_on;
    ks_channel_weight channels[KS_MAX_CHANNELS];
} ks_thresholds;

ks_result ks_encode_thresholds(const ks_thresholds *t, uint8_t *out, size_t cap, size_t *len);
/* KS_ERR_CAPACITY when the record has more than KS_MAX_CHANNELS channels. */
ks_result ks_decode_thresholds(const uint8_t *p, size_t len, ks_thresholds *t);

/* L = sum((raw[i] - zero[i]) * weight_q16[i]) >> 16, in 64-bit integer
 * arithmetic with an arithmetic (flooring) shift, exactly as
 * Thresholds.load_index. raw holds channel_count values. Exact whenever the
 * sum fits in int64 (always for 24-bit ADCs); wraps modulo 2^64 otherwise. */
int64_t ks_load_index(const ks_thresholds *t, const int32_t *raw);

/* Floor of x / 65536 (x >> 16 as an arithmetic shift), without UB. */
int64_t ks_asr16(int64_t x);

/* ------------------------------------------------------------------------ */
/* Commands (host -> device) and responses                                  */

typedef struct ks_command {
    uint16_t request_id;
    uint8_t opcode;         /* enum ks_opcode, or an unknown value */
    uint8_t known;          /* 1 when opcode is one of enum ks_opcode */
    const uint8_t *raw_args; /* the argument bytes (points into the payload) */
    size_t raw_args_len;
    union {
        struct { const uint8_t *data; size_t len; } ping; /* len <= 64 */
        struct { uint16_t rate_hz; uint8_t channel_mask; uint8_t encoding; } set_stream_config;
        struct { uint8_t channel_mask; uint16_t n_samples; } tare;
        struct { uint16_t offset; uint8_t max_length; } read_calibration;
        struct { uint16_t offset; uint16_t total_length; const uint8_t *data; size_t len; }
            write_calibration;
        struct { uint32_t calibration_id; uint16_t total_length; uint16_t crc; }
            commit_calibration;
        ks_thresholds write_thresholds;
    } arg;
} ks_command;

/* Parse a command payload (frame type 0x10) into *cmd (docs/protocol.md 10.3).
 *   KS_OK            cmd is complete; cmd->known is 0 for an unknown opcode
 *                    (answer KS_STATUS_UNKNOWN_COMMAND)
 *   KS_ERR_MESSAGE   answer KS_STATUS_MALFORMED with ks_build_response_error:
 *                    fewer than 3 bytes (cmd holds request id 0xFFFF and opcode
 *                    0xFF, so the answer is the "unreadable" one), or arguments
 *                    shorter than the opcode's fixed arguments / PING data over
 *                    64 bytes (cmd holds the real request id and opcode, which
 *                    the answer echoes)
 *   KS_ERR_CAPACITY  WRITE_THRESHOLDS with more than KS_MAX_CHANNELS channels
 *                    (well formed; answer KS_STATUS_BAD_ARGUMENT)
 */
ks_result ks_parse_command(const uint8_t *p, size_t len, ks_command *cmd);

/* Encode a command payload (host side; uses cmd->arg by opcode, raw_args for
 * unknown opcodes). */
ks_result ks_encode_command(const ks_command *cmd, uint8_t *out, size_t cap, size_t *len);

typedef struct ks_response {
    uint16_t request_id;
    uint8_t opcode;
    uint8_t status; /* enum ks_status_code */
    const uint8_t *result;
    size_t result_len;
} ks_response;

ks_result ks_encode_response(const ks_response *r, uint8_t *out, size_t cap, size_t *len);
ks_result ks_decode_response(const uint8_t *p, size_t len, ks_response *r);

/* Build a Response frame to cmd. The result may already sit at
 * KS_RESPONSE_RESULT(frame) (encode it there with room
 * cap - KS_RESPONSE_OVERHEAD; nothing is copied) or anywhere else. */
ks_result ks_build_response(uint8_t *frame, size_t cap, uint16_t seq, const ks_command *cmd,
                            uint8_t status, const uint8_t *result, size_t result_len,
                            size_t *frame_len);
/* An error answer to cmd (no result). */
ks_result ks_build_response_error(uint8_t *frame, size_t cap, uint16_t seq,
                                  const ks_command *cmd, uint8_t status, size_t *frame_len);
/* The answer to a command that could not be read: 0xFFFF, 0xFF, MALFORMED. */
ks_result ks_build_unreadable_response(uint8_t *frame, size_t cap, uint16_t seq,
                                       size_t *frame_len);

/* Results (layouts by opcode; see commands.py RESULT_TYPES):
 *   PING                  the echoed data (raw)
 *   GET_INFO              DeviceInfo payload
 *   START/SET/GET_STREAM  StreamConfig payload
 *   TARE                  ks_tare_result
 *   READ_CALIBRATION      ks_calibration_chunk
 *   READ/WRITE_THRESHOLDS Thresholds record
 *   GET_STATUS            Status payload
 *   others                empty */
typedef struct ks_tare_result {
    uint8_t channel_mask;
    int32_t zeros[8]; /* one per bit of channel_mask, in channel order */
} ks_tare_result;

typedef struct ks_calibration_chunk {
    uint32_t calibration_id;
    uint16_t total_length;
    uint16_t offset;
    const uint8_t *data;
    size_t data_len;
} ks_calibration_chunk;

ks_result ks_encode_tare_result(const ks_tare_result *r, uint8_t *out, size_t cap, size_t *len);
ks_result ks_decode_tare_result(const uint8_t *p, size_t len, ks_tare_result *r);
ks_result ks_encode_calibration_chunk(const ks_calibration_chunk *c, uint8_t *out, size_t cap,
                                      size_t *len);
ks_result ks_decode_calibration_chunk(const uint8_t *p, size_t len, ks_calibration_chunk *c);

#ifdef __cplusplus
}
#endif

#endif /* KNOTSENSE_PROTOCOL_H */
