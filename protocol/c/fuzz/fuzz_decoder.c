/*
 * fuzz_decoder.c -- fuzz target for the receive side of knotsense_protocol.c.
 *
 * libFuzzer:  clang -g -O1 -fsanitize=fuzzer,address,undefined -I.. fuzz_decoder.c ../knotsense_protocol.c
 * without libFuzzer: link with random_driver.c instead (any C99 compiler).
 *
 * Each input is used three ways:
 *   1. as a raw byte stream fed one byte at a time to ks_stream_decoder;
 *   2. as one BLE packet for ks_parse_frame, and as COBS data;
 *   3. as a message (type = first byte, payload = the rest) wrapped in a
 *      valid frame, so the payload decoders and the command parser see
 *      arbitrary payloads behind a good CRC.
 * Every accepted frame must round-trip (rebuild, restuff, re-decode), the
 * decoder state must stay in bounds, and the sanitizers must stay quiet.
 */
#include "knotsense_protocol.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)                                                                          \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            abort();                                                                           \
        }                                                                                      \
    } while (0)

static void exercise_payload(uint8_t type, const uint8_t *p, size_t n)
{
    static uint8_t out[KS_MAX_FRAME_SIZE];
    static ks_command cmd;
    size_t len = 0;
    ks_result check = ks_check_message(type, p, n);
    switch (type) {
    case KS_MSG_DEVICE_INFO: {
        ks_device_info m;
        ks_result r = ks_decode_device_info(p, n, &m);
        REQUIRE(r == KS_OK || r == KS_ERR_MESSAGE || r == KS_ERR_CAPACITY);
        REQUIRE((r == KS_ERR_MESSAGE) == (check == KS_ERR_MESSAGE));
        if (r == KS_OK) {
            r = ks_encode_device_info(&m, out, sizeof out, &len);
            REQUIRE(r == KS_OK || r == KS_ERR_SPACE);
            if (r == KS_OK) {
                /* equal up to trailing bytes, or an absent model (one more 0x00) */
                REQUIRE(memcmp(out, p, len < n ? len : n) == 0 && len <= n + 1u);
            }
        }
        break;
    }
    case KS_MSG_STREAM_CONFIG: {
        ks_stream_config m;
        if (ks_decode_stream_config(p, n, &m) == KS_OK) {
            REQUIRE(check == KS_OK);
            REQUIRE(ks_encode_stream_config(&m, out, sizeof out, &len) == KS_OK);
            /* streaming is normalised to 0/1 */
            REQUIRE(len == 12 && memcmp(out, p, 9) == 0 && memcmp(out + 10, p + 10, 2) == 0);
        } else {
            REQUIRE(check == KS_ERR_MESSAGE);
        }
        break;
    }
    case KS_MSG_SAMPLE_BLOCK: {
        ks_sample_block m;
        if (ks_decode_sample_block(p, n, &m) == KS_OK) {
            static int32_t values[255 * 8];
            unsigned c = ks_popcount8(m.channel_mask);
            unsigned s;
            unsigned k;
            REQUIRE(check == KS_OK);
            for (s = 0; s < m.n_samples; s++) {
                for (k = 0; k < c; k++) {
                    values[s * c + k] = ks_block_value(&m, s, k);
                }
            }
            m.samples = values;
            if (ks_encode_sample_block(&m, out, sizeof out, &len) == KS_OK) {
                REQUIRE(len <= n && memcmp(out, p, len) == 0);
            }
        } else {
            REQUIRE(check == KS_ERR_MESSAGE);
        }
        break;
    }
    case KS_MSG_DEVICE_EVENT: {
        ks_device_event m;
        if (ks_decode_device_event(p, n, &m) == KS_OK) {
            REQUIRE(ks_encode_device_event(&m, out, sizeof out, &len) == KS_OK);
            REQUIRE(len == 10 && memcmp(out, p, len) == 0);
        }
        break;
    }
    case KS_MSG_STATUS: {
        ks_status m;
        if (ks_decode_status(p, n, &m) == KS_OK) {
            REQUIRE(ks_encode_status(&m, out, sizeof out, &len) == KS_OK);
            REQUIRE(len == 35 && memcmp(out, p, len) == 0);
        }
        break;
    }
    case KS_MSG_LOG_TEXT: {
        ks_log_text m;
        if (ks_decode_log_text(p, n, &m) == KS_OK) {
            REQUIRE(ks_encode_log_text(&m, out, sizeof out, &len) == KS_OK);
            REQUIRE(len == n && memcmp(out, p, len) == 0);
        }
        break;
    }
    case KS_MSG_COMMAND: {
        ks_result r = ks_parse_command(p, n, &cmd);
        size_t fl = 0;
        REQUIRE(r == KS_OK || r == KS_ERR_MESSAGE || r == KS_ERR_CAPACITY);
        if (r == KS_OK) {
            REQUIRE(ks_encode_command(&cmd, out, sizeof out, &len) == KS_OK);
            REQUIRE(len <= n && memcmp(out, p, len) == 0);
            REQUIRE(ks_build_response(out, sizeof out, 1, &cmd, KS_STATUS_OK, cmd.raw_args,
                                      cmd.raw_args_len, &fl) == KS_OK ||
                    cmd.raw_args_len > KS_MAX_PAYLOAD_SIZE - 4u);
            if (cmd.opcode == KS_OP_WRITE_THRESHOLDS) {
                int32_t raw[KS_MAX_CHANNELS] = {0};
                unsigned i;
                for (i = 0; i < cmd.arg.write_thresholds.channel_count; i++) {
                    raw[i] = cmd.arg.write_thresholds.channels[i].zero ^ (int32_t)i;
                }
                (void)ks_load_index(&cmd.arg.write_thresholds, raw);
            }
        } else if (r == KS_ERR_MESSAGE) {
            REQUIRE(ks_build_unreadable_response(out, sizeof out, 2, &fl) == KS_OK);
        }
        break;
    }
    case KS_MSG_RESPONSE: {
        ks_response r;
        if (ks_decode_response(p, n, &r) == KS_OK) {
            ks_tare_result t;
            ks_calibration_chunk c;
            ks_thresholds th;
            (void)ks_decode_tare_result(r.result, r.result_len, &t);
            (void)ks_decode_calibration_chunk(r.result, r.result_len, &c);
            (void)ks_decode_thresholds(r.result, r.result_len, &th);
            REQUIRE(ks_encode_response(&r, out, sizeof out, &len) == KS_OK || n > sizeof out);
        }
        break;
    }
    default:
        REQUIRE(check == KS_OK);
        break;
    }
}

static void check_frame(const ks_frame *fr)
{
    static uint8_t frame[KS_MAX_FRAME_SIZE];
    static uint8_t stuffed[KS_MAX_STUFFED_SIZE];
    static ks_stream_decoder again;
    ks_frame back;
    size_t fl = 0;
    size_t sl = 0;
    size_t i;
    int got = 0;
    REQUIRE(fr->payload_len <= KS_MAX_PAYLOAD_SIZE);
    REQUIRE(ks_build_frame(frame, sizeof frame, fr->type, fr->seq, fr->payload, fr->payload_len,
                           &fl) == KS_OK);
    REQUIRE(ks_parse_frame(frame, fl, &back) == KS_OK);
    REQUIRE(back.type == fr->type && back.seq == fr->seq && back.payload_len == fr->payload_len);
    REQUIRE(ks_stuff_frame(frame, fl, stuffed, sizeof stuffed, &sl) == KS_OK);
    ks_stream_init(&again);
    for (i = 0; i < sl; i++) {
        int rc = ks_stream_feed(&again, stuffed[i], &back);
        REQUIRE(rc == 0 || rc == 1);
        got += rc;
    }
    REQUIRE(got == 1 && back.payload_len == fr->payload_len &&
            memcmp(back.payload, fr->payload, fr->payload_len) == 0);
    exercise_payload(fr->type, fr->payload, fr->payload_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ks_stream_decoder dec;
    static uint8_t buf[4096];
    static uint8_t frame[KS_MAX_FRAME_SIZE];
    ks_frame fr;
    size_t i;
    size_t n = 0;
    size_t fl = 0;

    /* 1. the stream decoder, a byte at a time */
    ks_stream_init(&dec);
    for (i = 0; i < size; i++) {
        int rc = ks_stream_feed(&dec, data[i], &fr);
        REQUIRE(rc <= 1 && rc >= KS_ERR_OVERSIZE);
        REQUIRE(dec.len <= KS_MAX_FRAME_SIZE && dec.enc_len <= KS_MAX_ENCODED_SIZE);
        if (rc == 1) {
            check_frame(&fr);
        }
    }
    REQUIRE(dec.stats.bytes_in == size && dec.stats.bytes_discarded <= size);

    /* 2. one packet; COBS both ways */
    if (ks_parse_frame(data, size, &fr) == KS_OK) {
        check_frame(&fr);
    }
    if (size <= 2048) {
        if (ks_cobs_decode(data, size, buf, sizeof buf, &n) == KS_OK) {
            REQUIRE(n < size || size == 0);
        }
        REQUIRE(ks_cobs_encode(data, size, buf, sizeof buf, &n) == KS_OK);
        REQUIRE(n <= KS_COBS_MAX_ENCODED(size) && memchr(buf, 0, n) == NULL);
        REQUIRE(ks_cobs_decode(buf, n, buf, sizeof buf, &n) == KS_OK);
        REQUIRE(n == size && memcmp(buf, data, size) == 0);
    }

    /* 3. arbitrary payload behind a good CRC */
    if (size >= 1) {
        size_t pn = size - 1 > KS_MAX_PAYLOAD_SIZE ? KS_MAX_PAYLOAD_SIZE : size - 1;
        REQUIRE(ks_build_frame(frame, sizeof frame, data[0], 7, data + 1, pn, &fl) == KS_OK);
        REQUIRE(ks_parse_frame(frame, fl, &fr) == KS_OK);
        check_frame(&fr);
    }
    return 0;
}
