/*
 * firmware_example.c -- how a device uses knotsense_protocol (docs/protocol-c.md).
 *
 * Board-neutral: the few functions marked "board" are what an nRF52, ESP32 or
 * STM32 port provides (UART transmit, BLE notify, ADC, clock). The test suite
 * compiles this file so the example in the docs stays true.
 */
#include "knotsense_protocol.h"

#include <string.h>

/* ---- board: provided by the port --------------------------------------- */
extern void board_uart_write(const uint8_t *data, size_t len);      /* blocking or DMA */
extern int board_ble_notify(const uint8_t *frame, size_t len);      /* data characteristic */
extern int board_ble_connected(void);
extern uint16_t board_ble_att_mtu(void);
extern void board_adc_read(int32_t raw[4]);                          /* one sample, 4 channels */
extern uint32_t board_micros(void);
extern void board_irq_disable(void);
extern void board_irq_enable(void);

/* ---- state ----------------------------------------------------------------- */
#define CHANNEL_MASK 0x0Fu
#define RATE_HZ 250u

static uint16_t tx_seq;                       /* one counter per link, +1 per frame */
static uint8_t tx_frame[KS_MAX_FRAME_SIZE];   /* unencoded frame being built */
static uint8_t tx_wire[KS_MAX_STUFFED_SIZE];  /* COBS + 0x00, for the UART */
static ks_block_builder block;
static uint32_t sample_index;
static ks_thresholds thresholds;              /* would live in NVM */

/* Send one finished frame: unencoded on BLE, COBS-stuffed on the UART. */
static void send_frame(const uint8_t *frame, size_t len)
{
    size_t n = 0;
    if (board_ble_connected()) {
        (void)board_ble_notify(frame, len);   /* frame <= ATT MTU - 3 by construction */
    } else if (ks_stuff_frame(frame, len, tx_wire, sizeof tx_wire, &n) == KS_OK) {
        board_uart_write(tx_wire, n);
    }
    tx_seq++;
}

/* The frame size this link allows: one notification on BLE, 244 on the UART. */
static size_t link_frame_size(void)
{
    return board_ble_connected() ? ks_frame_size_for_mtu(board_ble_att_mtu()) : KS_MAX_FRAME_SIZE;
}

/* ---- sampling: call at RATE_HZ from a timer or the main loop ------------- */
void sampling_tick(void)
{
    int32_t raw[4];
    board_adc_read(raw);
    if (block.frame == NULL) {                /* start a block */
        ks_sample_block head;
        memset(&head, 0, sizeof head);
        head.t_first_us = board_micros();
        head.sample_index = sample_index;
        head.period_ns = 1000000000u / RATE_HZ;
        head.channel_mask = CHANNEL_MASK;
        head.encoding = KS_INT24;
        if (ks_block_begin(&block, tx_frame, link_frame_size(), &head) != KS_OK) {
            return;                           /* frame too small for one sample */
        }
    }
    if (ks_block_add(&block, raw) == KS_ERR_RANGE) {
        ks_block_mark(&block, CHANNEL_MASK, 0); /* never happens with a 24-bit ADC */
    }
    sample_index++;
    if (ks_block_full(&block)) {
        size_t len = 0;
        if (ks_block_finish(&block, tx_seq, &len) == KS_OK) {
            send_frame(tx_frame, len);
        }
        block.frame = NULL;
    }
}

/* ---- receiving: UART RX interrupt feeds the decoder ------------------------ */
static ks_stream_decoder rx;                  /* ks_stream_init(&rx) at boot */
static uint8_t mailbox[KS_MAX_PAYLOAD_SIZE];  /* one command waiting for the main loop */
static volatile size_t mailbox_len;
static volatile uint8_t mailbox_full;

void UART_RX_IRQHandler(uint8_t byte)         /* board: called with each received byte */
{
    ks_frame f;
    if (ks_stream_feed(&rx, byte, &f) == 1 && f.type == KS_MSG_COMMAND && !mailbox_full) {
        memcpy(mailbox, f.payload, f.payload_len); /* f.payload is valid until the next byte */
        mailbox_len = f.payload_len;
        mailbox_full = 1;
    }
}

/* BLE writes to the control characteristic carry one unencoded frame. */
void ble_control_written(const uint8_t *data, size_t len)
{
    ks_frame f;
    if (ks_parse_frame(data, len, &f) == KS_OK && f.type == KS_MSG_COMMAND && !mailbox_full) {
        memcpy(mailbox, f.payload, f.payload_len);
        mailbox_len = f.payload_len;
        mailbox_full = 1;
    }
}

/* ---- commands: called from the main loop --------------------------------- */
static ks_command cmd;                        /* static: it holds a Thresholds record */
static uint8_t rsp[KS_MAX_FRAME_SIZE];

static void answer(uint8_t status, size_t result_len)
{
    size_t len = 0;
    if (ks_build_response(rsp, sizeof rsp, tx_seq, &cmd, status, KS_RESPONSE_RESULT(rsp),
                          result_len, &len) == KS_OK) {
        send_frame(rsp, len);
    }
}

void poll_commands(void)
{
    ks_result r;
    size_t n = 0;
    uint8_t *result = KS_RESPONSE_RESULT(rsp); /* results are encoded in place */
    size_t room = sizeof rsp - KS_RESPONSE_OVERHEAD;
    if (!mailbox_full) {
        return;
    }
    r = ks_parse_command(mailbox, mailbox_len, &cmd);
    mailbox_full = 0;
    if (r == KS_ERR_MESSAGE) {                /* MALFORMED; 0xFFFF/0xFF if under 3 bytes */
        answer(KS_STATUS_MALFORMED, 0);
        return;
    }
    if (r == KS_ERR_CAPACITY) {               /* more channels than this device has */
        answer(KS_STATUS_BAD_ARGUMENT, 0);
        return;
    }
    switch (cmd.opcode) {
    case KS_OP_PING:
        memmove(result, cmd.arg.ping.data, cmd.arg.ping.len);
        answer(KS_STATUS_OK, cmd.arg.ping.len);
        break;
    case KS_OP_GET_STATUS: {
        ks_status st;
        memset(&st, 0, sizeof st);
        st.t_us = board_micros();
        st.battery_pct = 0xFF;
        st.rx_crc_errors = rx.stats.crc_errors;
        st.rx_framing_errors = rx.stats.framing_errors + rx.stats.oversize + rx.stats.version_errors;
        if (ks_encode_status(&st, result, room, &n) == KS_OK) {
            answer(KS_STATUS_OK, n);
        }
        break;
    }
    case KS_OP_WRITE_THRESHOLDS:
        thresholds = cmd.arg.write_thresholds; /* store in NVM, then echo the record */
        if (ks_encode_thresholds(&thresholds, result, room, &n) == KS_OK) {
            answer(KS_STATUS_OK, n);
        }
        break;
    case KS_OP_STOP_STREAM:
        answer(KS_STATUS_OK, 0);
        break;
    default:
        answer(cmd.known ? KS_STATUS_UNSUPPORTED : KS_STATUS_UNKNOWN_COMMAND, 0);
        break;
    }
}

/* ---- the on-device detector uses the load index -------------------------- */
int release_level(const int32_t raw[4])
{
    int64_t load = ks_load_index(&thresholds, raw); /* millinewtons with host-chosen weights */
    return load >= thresholds.release_on;
}

void protocol_init(void)
{
    board_irq_disable();
    ks_stream_init(&rx);
    board_irq_enable();
}
