/*
 * ks_test.c -- test driver for knotsense_protocol.c.
 *
 * Reads directives from stdin, one per line: a word, then key=value tokens
 * (integers in decimal, lists comma-separated, bytes and strings as lowercase
 * hex). tests/protocol_c/test_c_protocol.py writes these lines from
 * protocol/vectors.json and from random messages; the format is:
 *
 *   crc       name= data=HEX crc=N
 *   cobs      name= decoded=HEX encoded=HEX
 *   frame     name= message=NAME type=N seq=N payload=HEX frame=HEX stream=HEX f.<field>=...
 *             encode the fields (payload, frame, stream must match byte for
 *             byte) and decode payload, frame and stream back to the same fields
 *   encode    message=NAME seq=N f.<field>=...   -> prints "frame HEX"
 *   decode    frame=HEX                           -> prints "fields message=NAME f.<field>=..."
 *   reject    name= framing=stream|packet inputs=HEX,... delivered=seq:type:lost,... stats.<k>=N
 *   stream    data=HEX       -> prints "stream delivered=seq:type:lost:payloadhex,... stats.<k>=N ..."
 *   load_index zero=.. weight_q16=.. raw=.. sum=N load_index=N
 *   link      att_mtu= max_frame_size= channels= encoding= max_samples=
 *   selftest  API behaviour not covered by vectors
 *
 * Checking directives print "ok NAME" or "FAIL NAME: why"; the exit status is
 * 1 when anything failed. The test program may use stdio; the library does not.
 */
#include "knotsense_protocol.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LINE (4u << 20)
#define MAX_TOKENS 512
#define MAX_BYTES (1u << 20)

typedef struct {
    const char *key;
    const char *val;
} kv_t;

typedef struct {
    kv_t items[MAX_TOKENS];
    int n;
} kvs_t;

static char line_buf[MAX_LINE];
static int failures;
static int checks;
static const char *current_name = "?";
static char fail_msg[512];
static int case_failed;

/* ---------------------------------------------------------------- helpers */

static void fail(const char *fmt, ...)
{
    va_list ap;
    if (case_failed) {
        return; /* the first reason is enough */
    }
    case_failed = 1;
    va_start(ap, fmt);
    vsnprintf(fail_msg, sizeof fail_msg, fmt, ap);
    va_end(ap);
}

static void begin_case(const char *name)
{
    current_name = name ? name : "?";
    case_failed = 0;
    fail_msg[0] = '\0';
}

static void end_case(void)
{
    checks++;
    if (case_failed) {
        failures++;
        printf("FAIL %s: %s\n", current_name, fail_msg);
    } else {
        printf("ok %s\n", current_name);
    }
}

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fail("%s:%d: %s", __FILE__, __LINE__, #cond);                              \
        }                                                                              \
    } while (0)

#define CHECK_OK(expr)                                                                 \
    do {                                                                               \
        ks_result r_ = (expr);                                                         \
        if (r_ != KS_OK) {                                                             \
            fail("%s:%d: %s returned %d", __FILE__, __LINE__, #expr, (int)r_);         \
        }                                                                              \
    } while (0)

static const char *kv_get(const kvs_t *kv, const char *key)
{
    int i;
    for (i = 0; i < kv->n; i++) {
        if (strcmp(kv->items[i].key, key) == 0) {
            return kv->items[i].val;
        }
    }
    return NULL;
}

static const char *kv_need(const kvs_t *kv, const char *key)
{
    const char *v = kv_get(kv, key);
    if (v == NULL) {
        fail("missing key %s", key);
        return "0";
    }
    return v;
}

static long long kv_int(const kvs_t *kv, const char *key) { return strtoll(kv_need(kv, key), NULL, 10); }

static int hex_val(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Parse hex (up to a ',' or the end) into out; returns length or -1. */
static long parse_hex(const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0;
    while (*s && *s != ',') {
        int hi = hex_val((unsigned char)s[0]);
        int lo = s[1] ? hex_val((unsigned char)s[1]) : -1;
        if (hi < 0 || lo < 0 || n >= cap) {
            return -1;
        }
        out[n++] = (uint8_t)(hi * 16 + lo);
        s += 2;
    }
    return (long)n;
}

static size_t kv_hex(const kvs_t *kv, const char *key, uint8_t *out, size_t cap)
{
    long n = parse_hex(kv_need(kv, key), out, cap);
    if (n < 0) {
        fail("bad hex in %s", key);
        return 0;
    }
    return (size_t)n;
}

static size_t kv_list(const kvs_t *kv, const char *key, long long *out, size_t cap)
{
    const char *s = kv_need(kv, key);
    size_t n = 0;
    while (*s) {
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s || n >= cap) {
            fail("bad list in %s", key);
            return n;
        }
        out[n++] = v;
        s = *end == ',' ? end + 1 : end;
    }
    return n;
}

static char *to_hex(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;
    for (i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
    return out;
}

/* Tokenise "word k=v k=v" in place. */
static char *next_token(char **cursor)
{
    char *s = *cursor;
    char *start;
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') {
        s++;
    }
    if (*s == '\0') {
        *cursor = s;
        return NULL;
    }
    start = s;
    while (*s && *s != ' ' && *s != '\t' && *s != '\r' && *s != '\n') {
        s++;
    }
    if (*s) {
        *s++ = '\0';
    }
    *cursor = s;
    return start;
}

static char *tokenise(char *line, kvs_t *kv)
{
    char *cursor = line;
    char *word = next_token(&cursor);
    char *tok;
    kv->n = 0;
    while ((tok = next_token(&cursor)) != NULL) {
        char *eq = strchr(tok, '=');
        if (eq == NULL || kv->n >= MAX_TOKENS) {
            continue;
        }
        *eq = '\0';
        kv->items[kv->n].key = tok;
        kv->items[kv->n].val = eq + 1;
        kv->n++;
    }
    return word;
}

/* ---------------------------------------------------------------- emitted fields */

typedef struct {
    char keys[MAX_TOKENS][64];
    char *vals[MAX_TOKENS];
    int n;
    char arena[1u << 20];
    size_t used;
} fields_t;

static fields_t emitted;

static void fields_reset(fields_t *f)
{
    f->n = 0;
    f->used = 0;
}

static char *fields_slot(fields_t *f, const char *key, size_t need)
{
    char *v;
    if (f->n >= MAX_TOKENS || f->used + need + 1 > sizeof f->arena) {
        fail("emitted too many fields");
        return NULL;
    }
    snprintf(f->keys[f->n], sizeof f->keys[0], "%s", key);
    v = f->arena + f->used;
    f->vals[f->n++] = v;
    f->used += need + 1;
    v[0] = '\0';
    return v;
}

static void emit_int(fields_t *f, const char *key, long long v)
{
    char *s = fields_slot(f, key, 24);
    if (s) {
        snprintf(s, 24, "%lld", v);
    }
}

static void emit_hex(fields_t *f, const char *key, const uint8_t *p, size_t n)
{
    char *s = fields_slot(f, key, 2 * n);
    if (s) {
        to_hex(p, n, s);
    }
}

static void emit_str(fields_t *f, const char *key, const char *text)
{
    emit_hex(f, key, (const uint8_t *)text, strlen(text));
}

static void emit_list(fields_t *f, const char *key, const long long *v, size_t n)
{
    char *s = fields_slot(f, key, 24 * n + 1);
    size_t i;
    size_t used = 0;
    if (!s) {
        return;
    }
    for (i = 0; i < n; i++) {
        used += (size_t)snprintf(s + used, 25, i ? ",%lld" : "%lld", v[i]);
    }
}

/* Every "f.<key>" of kv equals the emitted field and vice versa. */
static void compare_fields(const kvs_t *kv, const fields_t *f, const char *where)
{
    int i;
    int expected = 0;
    char key[80];
    for (i = 0; i < kv->n; i++) {
        if (strncmp(kv->items[i].key, "f.", 2) == 0) {
            expected++;
        }
    }
    for (i = 0; i < f->n; i++) {
        const char *want;
        snprintf(key, sizeof key, "f.%s", f->keys[i]);
        want = kv_get(kv, key);
        if (want == NULL) {
            fail("%s: decoded an extra field %s=%s", where, f->keys[i], f->vals[i]);
            return;
        }
        if (strcmp(want, f->vals[i]) != 0) {
            fail("%s: field %s is %s, expected %s", where, f->keys[i], f->vals[i], want);
            return;
        }
    }
    if (expected != f->n) {
        fail("%s: %d fields expected, %d decoded", where, expected, f->n);
    }
}

static void print_fields(const fields_t *f)
{
    int i;
    for (i = 0; i < f->n; i++) {
        printf(" f.%s=%s", f->keys[i], f->vals[i]);
    }
}

/* ---------------------------------------------------------------- messages <-> fields */

static uint8_t bytes_a[MAX_BYTES];
static uint8_t bytes_b[MAX_BYTES];
static uint8_t bytes_c[MAX_BYTES];
static uint8_t bytes_d[MAX_BYTES]; /* field data of encode_from_fields */
static long long list_a[4096];
static long long list_b[4096];
static long long list_c[4096];
static int32_t samples_buf[4096];
static uint8_t str_a[512];
static uint8_t str_b[512];

static int message_type_of(const char *name)
{
    static const struct { const char *name; int type; } names[] = {
        {"DeviceInfo", KS_MSG_DEVICE_INFO}, {"StreamConfig", KS_MSG_STREAM_CONFIG},
        {"SampleBlock", KS_MSG_SAMPLE_BLOCK}, {"DeviceEvent", KS_MSG_DEVICE_EVENT},
        {"Status", KS_MSG_STATUS}, {"LogText", KS_MSG_LOG_TEXT},
        {"Command", KS_MSG_COMMAND}, {"Response", KS_MSG_RESPONSE},
    };
    size_t i;
    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(names[i].name, name) == 0) {
            return names[i].type;
        }
    }
    return -1; /* UnknownMessage */
}

static const char *message_name_of(int type)
{
    switch (type) {
    case KS_MSG_DEVICE_INFO: return "DeviceInfo";
    case KS_MSG_STREAM_CONFIG: return "StreamConfig";
    case KS_MSG_SAMPLE_BLOCK: return "SampleBlock";
    case KS_MSG_DEVICE_EVENT: return "DeviceEvent";
    case KS_MSG_STATUS: return "Status";
    case KS_MSG_LOG_TEXT: return "LogText";
    case KS_MSG_COMMAND: return "Command";
    case KS_MSG_RESPONSE: return "Response";
    default: return "UnknownMessage";
    }
}

/* fields with a prefix ("f." or "f.result_") */
static char pfx_buf[128];
static const char *P(const char *prefix, const char *key)
{
    snprintf(pfx_buf, sizeof pfx_buf, "%s%s", prefix, key);
    return pfx_buf;
}

static void device_info_from(const kvs_t *kv, const char *p, ks_device_info *m)
{
    size_t i;
    size_t n;
    memset(m, 0, sizeof *m);
    m->protocol_major = (uint8_t)kv_int(kv, P(p, "protocol_major"));
    m->protocol_minor = (uint8_t)kv_int(kv, P(p, "protocol_minor"));
    m->fw_major = (uint8_t)kv_int(kv, P(p, "fw_major"));
    m->fw_minor = (uint8_t)kv_int(kv, P(p, "fw_minor"));
    m->fw_patch = (uint16_t)kv_int(kv, P(p, "fw_patch"));
    m->hw_revision = (uint8_t)kv_int(kv, P(p, "hw_revision"));
    m->adc_bits = (uint8_t)kv_int(kv, P(p, "adc_bits"));
    m->units = (uint8_t)kv_int(kv, P(p, "units"));
    m->calibration_id = (uint32_t)kv_int(kv, P(p, "calibration_id"));
    n = kv_list(kv, P(p, "sample_rates"), list_a, KS_MAX_RATES);
    m->rate_count = (uint8_t)n;
    for (i = 0; i < n; i++) {
        m->sample_rates[i] = (uint16_t)list_a[i];
    }
    n = kv_list(kv, P(p, "channel_kind"), list_a, KS_MAX_CHANNELS);
    CHECK(kv_list(kv, P(p, "channel_x_01mm"), list_b, KS_MAX_CHANNELS) == n);
    CHECK(kv_list(kv, P(p, "channel_y_01mm"), list_c, KS_MAX_CHANNELS) == n);
    m->channel_count = (uint8_t)n;
    for (i = 0; i < n; i++) {
        m->channels[i].kind = (uint8_t)list_a[i];
        m->channels[i].x_dmm = (int16_t)list_b[i];
        m->channels[i].y_dmm = (int16_t)list_c[i];
    }
    m->serial_number_len = kv_hex(kv, P(p, "serial_number"), str_a, sizeof str_a);
    m->serial_number = (const char *)str_a;
    m->model_len = kv_hex(kv, P(p, "model"), str_b, sizeof str_b);
    m->model = (const char *)str_b;
}

static void device_info_emit(fields_t *f, const char *p, const ks_device_info *m)
{
    size_t i;
    emit_int(f, P(p, "protocol_major"), m->protocol_major);
    emit_int(f, P(p, "protocol_minor"), m->protocol_minor);
    emit_int(f, P(p, "fw_major"), m->fw_major);
    emit_int(f, P(p, "fw_minor"), m->fw_minor);
    emit_int(f, P(p, "fw_patch"), m->fw_patch);
    emit_int(f, P(p, "hw_revision"), m->hw_revision);
    emit_int(f, P(p, "adc_bits"), m->adc_bits);
    emit_int(f, P(p, "units"), m->units);
    emit_int(f, P(p, "channel_count"), m->channel_count);
    emit_int(f, P(p, "calibration_id"), m->calibration_id);
    emit_int(f, P(p, "rate_count"), m->rate_count);
    for (i = 0; i < m->rate_count; i++) {
        list_a[i] = m->sample_rates[i];
    }
    emit_list(f, P(p, "sample_rates"), list_a, m->rate_count);
    for (i = 0; i < m->channel_count; i++) {
        list_a[i] = m->channels[i].kind;
        list_b[i] = m->channels[i].x_dmm;
        list_c[i] = m->channels[i].y_dmm;
    }
    emit_list(f, P(p, "channel_kind"), list_a, m->channel_count);
    emit_list(f, P(p, "channel_x_01mm"), list_b, m->channel_count);
    emit_list(f, P(p, "channel_y_01mm"), list_c, m->channel_count);
    emit_hex(f, P(p, "serial_number"), (const uint8_t *)m->serial_number, m->serial_number_len);
    emit_hex(f, P(p, "model"), (const uint8_t *)m->model, m->model_len);
}

static void stream_config_from(const kvs_t *kv, const char *p, ks_stream_config *m)
{
    m->rate_hz = (uint16_t)kv_int(kv, P(p, "rate_hz"));
    m->channel_mask = (uint8_t)kv_int(kv, P(p, "channel_mask"));
    m->encoding = (uint8_t)kv_int(kv, P(p, "encoding"));
    m->period_ns = (uint32_t)kv_int(kv, P(p, "period_ns"));
    m->samples_per_block = (uint8_t)kv_int(kv, P(p, "samples_per_block"));
    m->streaming = (uint8_t)kv_int(kv, P(p, "streaming"));
    m->max_frame_size = (uint16_t)kv_int(kv, P(p, "max_frame_size"));
}

static void stream_config_emit(fields_t *f, const char *p, const ks_stream_config *m)
{
    emit_int(f, P(p, "rate_hz"), m->rate_hz);
    emit_int(f, P(p, "channel_mask"), m->channel_mask);
    emit_int(f, P(p, "encoding"), m->encoding);
    emit_int(f, P(p, "period_ns"), m->period_ns);
    emit_int(f, P(p, "samples_per_block"), m->samples_per_block);
    emit_int(f, P(p, "streaming"), m->streaming);
    emit_int(f, P(p, "max_frame_size"), m->max_frame_size);
}

static void status_from(const kvs_t *kv, const char *p, ks_status *m)
{
    m->t_us = (uint32_t)kv_int(kv, P(p, "t_us"));
    m->uptime_s = (uint32_t)kv_int(kv, P(p, "uptime_s"));
    m->battery_mv = (uint16_t)kv_int(kv, P(p, "battery_mv"));
    m->battery_pct = (uint8_t)kv_int(kv, P(p, "battery_pct"));
    m->flags = (uint8_t)kv_int(kv, P(p, "flags"));
    m->temperature_cdeg = (int16_t)kv_int(kv, P(p, "temperature_cdeg"));
    m->reset_reason = (uint8_t)kv_int(kv, P(p, "reset_reason"));
    m->frames_sent = (uint32_t)kv_int(kv, P(p, "frames_sent"));
    m->frames_dropped = (uint32_t)kv_int(kv, P(p, "frames_dropped"));
    m->rx_crc_errors = (uint32_t)kv_int(kv, P(p, "rx_crc_errors"));
    m->rx_framing_errors = (uint32_t)kv_int(kv, P(p, "rx_framing_errors"));
    m->sensor_faults = (uint32_t)kv_int(kv, P(p, "sensor_faults"));
}

static void status_emit(fields_t *f, const char *p, const ks_status *m)
{
    emit_int(f, P(p, "t_us"), m->t_us);
    emit_int(f, P(p, "uptime_s"), m->uptime_s);
    emit_int(f, P(p, "battery_mv"), m->battery_mv);
    emit_int(f, P(p, "battery_pct"), m->battery_pct);
    emit_int(f, P(p, "flags"), m->flags);
    emit_int(f, P(p, "temperature_cdeg"), m->temperature_cdeg);
    emit_int(f, P(p, "reset_reason"), m->reset_reason);
    emit_int(f, P(p, "frames_sent"), m->frames_sent);
    emit_int(f, P(p, "frames_dropped"), m->frames_dropped);
    emit_int(f, P(p, "rx_crc_errors"), m->rx_crc_errors);
    emit_int(f, P(p, "rx_framing_errors"), m->rx_framing_errors);
    emit_int(f, P(p, "sensor_faults"), m->sensor_faults);
}

static void thresholds_from(const kvs_t *kv, const char *p, ks_thresholds *t)
{
    size_t i;
    size_t n;
    memset(t, 0, sizeof *t);
    t->flags = (uint8_t)kv_int(kv, P(p, "flags"));
    t->debounce_ms = (uint16_t)kv_int(kv, P(p, "debounce_ms"));
    t->hold_s = (uint16_t)kv_int(kv, P(p, "hold_s"));
    t->release_on = (int32_t)kv_int(kv, P(p, "release_on"));
    t->release_off = (int32_t)kv_int(kv, P(p, "release_off"));
    t->overpressure_on = (int32_t)kv_int(kv, P(p, "overpressure_on"));
    n = kv_list(kv, P(p, "zero"), list_a, KS_MAX_CHANNELS);
    CHECK(kv_list(kv, P(p, "weight_q16"), list_b, KS_MAX_CHANNELS) == n);
    t->channel_count = (uint8_t)n;
    for (i = 0; i < n; i++) {
        t->channels[i].zero = (int32_t)list_a[i];
        t->channels[i].weight_q16 = (int32_t)list_b[i];
    }
}

static void thresholds_emit(fields_t *f, const char *p, const ks_thresholds *t)
{
    size_t i;
    emit_int(f, P(p, "flags"), t->flags);
    emit_int(f, P(p, "channel_count"), t->channel_count);
    emit_int(f, P(p, "debounce_ms"), t->debounce_ms);
    emit_int(f, P(p, "hold_s"), t->hold_s);
    emit_int(f, P(p, "release_on"), t->release_on);
    emit_int(f, P(p, "release_off"), t->release_off);
    emit_int(f, P(p, "overpressure_on"), t->overpressure_on);
    for (i = 0; i < t->channel_count; i++) {
        list_a[i] = t->channels[i].zero;
        list_b[i] = t->channels[i].weight_q16;
    }
    emit_list(f, P(p, "zero"), list_a, t->channel_count);
    emit_list(f, P(p, "weight_q16"), list_b, t->channel_count);
}

/* Encode the message described by the f.* fields into out (a payload). */
static size_t encode_from_fields(const kvs_t *kv, int type, uint8_t *out, size_t cap)
{
    size_t n = 0;
    ks_result r = KS_OK;
    switch (type) {
    case KS_MSG_DEVICE_INFO: {
        ks_device_info m;
        device_info_from(kv, "f.", &m);
        r = ks_encode_device_info(&m, out, cap, &n);
        break;
    }
    case KS_MSG_STREAM_CONFIG: {
        ks_stream_config m;
        stream_config_from(kv, "f.", &m);
        r = ks_encode_stream_config(&m, out, cap, &n);
        break;
    }
    case KS_MSG_SAMPLE_BLOCK: {
        ks_sample_block m;
        size_t i;
        size_t count;
        memset(&m, 0, sizeof m);
        m.t_first_us = (uint32_t)kv_int(kv, "f.t_first_us");
        m.sample_index = (uint32_t)kv_int(kv, "f.sample_index");
        m.period_ns = (uint32_t)kv_int(kv, "f.period_ns");
        m.channel_mask = (uint8_t)kv_int(kv, "f.channel_mask");
        m.encoding = (uint8_t)kv_int(kv, "f.encoding");
        m.flags = (uint8_t)kv_int(kv, "f.flags");
        m.saturated_mask = (uint8_t)kv_int(kv, "f.saturated_mask");
        m.fault_mask = (uint8_t)kv_int(kv, "f.fault_mask");
        m.n_samples = (uint8_t)kv_int(kv, "f.n_samples");
        CHECK(kv_int(kv, "f.channel_count") == (long long)ks_popcount8(m.channel_mask));
        count = kv_list(kv, "f.samples", list_a, 4096);
        CHECK(count == (size_t)m.n_samples * ks_popcount8(m.channel_mask));
        for (i = 0; i < count; i++) {
            samples_buf[i] = (int32_t)list_a[i];
        }
        m.samples = samples_buf;
        r = ks_encode_sample_block(&m, out, cap, &n);
        break;
    }
    case KS_MSG_DEVICE_EVENT: {
        ks_device_event m;
        m.t_us = (uint32_t)kv_int(kv, "f.t_us");
        m.code = (uint8_t)kv_int(kv, "f.code");
        m.arg = (uint8_t)kv_int(kv, "f.arg");
        m.value = (int32_t)kv_int(kv, "f.value");
        r = ks_encode_device_event(&m, out, cap, &n);
        break;
    }
    case KS_MSG_STATUS: {
        ks_status m;
        status_from(kv, "f.", &m);
        r = ks_encode_status(&m, out, cap, &n);
        break;
    }
    case KS_MSG_LOG_TEXT: {
        ks_log_text m;
        m.level = (uint8_t)kv_int(kv, "f.level");
        m.text_len = kv_hex(kv, "f.text", bytes_d, MAX_BYTES);
        m.text = (const char *)bytes_d;
        r = ks_encode_log_text(&m, out, cap, &n);
        break;
    }
    case KS_MSG_COMMAND: {
        static ks_command c;
        memset(&c, 0, sizeof c);
        c.request_id = (uint16_t)kv_int(kv, "f.request_id");
        c.opcode = (uint8_t)kv_int(kv, "f.opcode");
        switch (c.opcode) {
        case KS_OP_PING:
            c.arg.ping.len = kv_hex(kv, "f.data", bytes_d, MAX_BYTES);
            c.arg.ping.data = bytes_d;
            break;
        case KS_OP_SET_STREAM_CONFIG:
            c.arg.set_stream_config.rate_hz = (uint16_t)kv_int(kv, "f.rate_hz");
            c.arg.set_stream_config.channel_mask = (uint8_t)kv_int(kv, "f.channel_mask");
            c.arg.set_stream_config.encoding = (uint8_t)kv_int(kv, "f.encoding");
            break;
        case KS_OP_TARE:
            c.arg.tare.channel_mask = (uint8_t)kv_int(kv, "f.channel_mask");
            c.arg.tare.n_samples = (uint16_t)kv_int(kv, "f.n_samples");
            break;
        case KS_OP_READ_CALIBRATION:
            c.arg.read_calibration.offset = (uint16_t)kv_int(kv, "f.offset");
            c.arg.read_calibration.max_length = (uint8_t)kv_int(kv, "f.max_length");
            break;
        case KS_OP_WRITE_CALIBRATION:
            c.arg.write_calibration.offset = (uint16_t)kv_int(kv, "f.offset");
            c.arg.write_calibration.total_length = (uint16_t)kv_int(kv, "f.total_length");
            c.arg.write_calibration.len = kv_hex(kv, "f.data", bytes_d, MAX_BYTES);
            c.arg.write_calibration.data = bytes_d;
            break;
        case KS_OP_COMMIT_CALIBRATION:
            c.arg.commit_calibration.calibration_id = (uint32_t)kv_int(kv, "f.calibration_id");
            c.arg.commit_calibration.total_length = (uint16_t)kv_int(kv, "f.total_length");
            c.arg.commit_calibration.crc = (uint16_t)kv_int(kv, "f.crc");
            break;
        case KS_OP_WRITE_THRESHOLDS:
            thresholds_from(kv, "f.", &c.arg.write_thresholds);
            break;
        default:
            if (kv_get(kv, "f.args")) {
                c.raw_args_len = kv_hex(kv, "f.args", bytes_d, MAX_BYTES);
                c.raw_args = bytes_d;
            }
            break;
        }
        r = ks_encode_command(&c, out, cap, &n);
        break;
    }
    case KS_MSG_RESPONSE: {
        ks_response m;
        m.request_id = (uint16_t)kv_int(kv, "f.request_id");
        m.opcode = (uint8_t)kv_int(kv, "f.opcode");
        m.status = (uint8_t)kv_int(kv, "f.status");
        m.result_len = kv_hex(kv, "f.result", bytes_d, MAX_BYTES);
        m.result = bytes_d;
        r = ks_encode_response(&m, out, cap, &n);
        break;
    }
    default:
        n = kv_hex(kv, "f.payload", out, cap);
        break;
    }
    if (r != KS_OK) {
        fail("encoder returned %d", (int)r);
        return 0;
    }
    return n;
}

/* The typed result of an OK response, encoded from the f.result_* fields with
 * the C result encoders (checks those against the vector's result bytes). */
static void check_result_encoders(const kvs_t *kv, const ks_response *rsp)
{
    size_t n = 0;
    ks_result r = KS_OK;
    const char *p = "f.result_";
    switch (rsp->opcode) {
    case KS_OP_PING:
        n = kv_hex(kv, "f.result_data", bytes_c, MAX_BYTES);
        break;
    case KS_OP_GET_INFO: {
        ks_device_info m;
        device_info_from(kv, p, &m);
        r = ks_encode_device_info(&m, bytes_c, MAX_BYTES, &n);
        break;
    }
    case KS_OP_START_STREAM:
    case KS_OP_SET_STREAM_CONFIG:
    case KS_OP_GET_STREAM_CONFIG: {
        ks_stream_config m;
        stream_config_from(kv, p, &m);
        r = ks_encode_stream_config(&m, bytes_c, MAX_BYTES, &n);
        break;
    }
    case KS_OP_TARE: {
        ks_tare_result t;
        size_t i;
        size_t k;
        memset(&t, 0, sizeof t);
        t.channel_mask = (uint8_t)kv_int(kv, "f.result_channel_mask");
        k = kv_list(kv, "f.result_zeros", list_a, 8);
        for (i = 0; i < k; i++) {
            t.zeros[i] = (int32_t)list_a[i];
        }
        r = ks_encode_tare_result(&t, bytes_c, MAX_BYTES, &n);
        break;
    }
    case KS_OP_READ_CALIBRATION: {
        ks_calibration_chunk c;
        c.calibration_id = (uint32_t)kv_int(kv, "f.result_calibration_id");
        c.total_length = (uint16_t)kv_int(kv, "f.result_total_length");
        c.offset = (uint16_t)kv_int(kv, "f.result_offset");
        c.data_len = kv_hex(kv, "f.result_data", bytes_d, MAX_BYTES);
        c.data = bytes_d;
        r = ks_encode_calibration_chunk(&c, bytes_c, MAX_BYTES, &n);
        break;
    }
    case KS_OP_READ_THRESHOLDS:
    case KS_OP_WRITE_THRESHOLDS: {
        ks_thresholds t;
        thresholds_from(kv, p, &t);
        r = ks_encode_thresholds(&t, bytes_c, MAX_BYTES, &n);
        break;
    }
    case KS_OP_GET_STATUS: {
        ks_status m;
        status_from(kv, p, &m);
        r = ks_encode_status(&m, bytes_c, MAX_BYTES, &n);
        break;
    }
    default:
        n = 0;
        break;
    }
    CHECK(r == KS_OK);
    if (n != rsp->result_len || memcmp(bytes_c, rsp->result, n) != 0) {
        fail("typed result encoder disagrees with the result bytes");
    }
}

static void emit_result(fields_t *f, const ks_response *rsp)
{
    const char *p = "result_";
    switch (rsp->opcode) {
    case KS_OP_PING:
        emit_str(f, "result_type", "PingResult");
        emit_hex(f, "result_data", rsp->result, rsp->result_len);
        break;
    case KS_OP_GET_INFO: {
        ks_device_info m;
        emit_str(f, "result_type", "DeviceInfo");
        CHECK_OK(ks_decode_device_info(rsp->result, rsp->result_len, &m));
        device_info_emit(f, p, &m);
        break;
    }
    case KS_OP_START_STREAM:
    case KS_OP_SET_STREAM_CONFIG:
    case KS_OP_GET_STREAM_CONFIG: {
        ks_stream_config m;
        emit_str(f, "result_type", "StreamConfig");
        CHECK_OK(ks_decode_stream_config(rsp->result, rsp->result_len, &m));
        stream_config_emit(f, p, &m);
        break;
    }
    case KS_OP_TARE: {
        ks_tare_result t;
        size_t i;
        unsigned k;
        emit_str(f, "result_type", "TareResult");
        CHECK_OK(ks_decode_tare_result(rsp->result, rsp->result_len, &t));
        k = ks_popcount8(t.channel_mask);
        emit_int(f, "result_channel_mask", t.channel_mask);
        for (i = 0; i < k; i++) {
            list_a[i] = t.zeros[i];
        }
        emit_list(f, "result_zeros", list_a, k);
        break;
    }
    case KS_OP_READ_CALIBRATION: {
        ks_calibration_chunk c;
        emit_str(f, "result_type", "CalibrationChunk");
        CHECK_OK(ks_decode_calibration_chunk(rsp->result, rsp->result_len, &c));
        emit_int(f, "result_calibration_id", c.calibration_id);
        emit_int(f, "result_total_length", c.total_length);
        emit_int(f, "result_offset", c.offset);
        emit_hex(f, "result_data", c.data, c.data_len);
        break;
    }
    case KS_OP_READ_THRESHOLDS:
    case KS_OP_WRITE_THRESHOLDS: {
        ks_thresholds t;
        emit_str(f, "result_type", "Thresholds");
        CHECK_OK(ks_decode_thresholds(rsp->result, rsp->result_len, &t));
        thresholds_emit(f, p, &t);
        break;
    }
    case KS_OP_GET_STATUS: {
        ks_status m;
        emit_str(f, "result_type", "Status");
        CHECK_OK(ks_decode_status(rsp->result, rsp->result_len, &m));
        status_emit(f, p, &m);
        break;
    }
    default: /* STOP_STREAM, WRITE/COMMIT_CALIBRATION, REBOOT */
        emit_str(f, "result_type", "EmptyResult");
        break;
    }
}

/* Decode a payload of the given type into fields. */
static void decode_to_fields(int type, const uint8_t *p, size_t n, fields_t *f)
{
    fields_reset(f);
    if (ks_check_message((uint8_t)type, p, n) != KS_OK) {
        fail("ks_check_message rejects the payload");
        return;
    }
    switch (type) {
    case KS_MSG_DEVICE_INFO: {
        ks_device_info m;
        CHECK_OK(ks_decode_device_info(p, n, &m));
        device_info_emit(f, "", &m);
        break;
    }
    case KS_MSG_STREAM_CONFIG: {
        ks_stream_config m;
        CHECK_OK(ks_decode_stream_config(p, n, &m));
        stream_config_emit(f, "", &m);
        break;
    }
    case KS_MSG_SAMPLE_BLOCK: {
        ks_sample_block m;
        unsigned c;
        unsigned s;
        unsigned k;
        size_t i = 0;
        CHECK_OK(ks_decode_sample_block(p, n, &m));
        c = ks_popcount8(m.channel_mask);
        emit_int(f, "t_first_us", m.t_first_us);
        emit_int(f, "sample_index", m.sample_index);
        emit_int(f, "period_ns", m.period_ns);
        emit_int(f, "channel_mask", m.channel_mask);
        emit_int(f, "encoding", m.encoding);
        emit_int(f, "flags", m.flags);
        emit_int(f, "saturated_mask", m.saturated_mask);
        emit_int(f, "fault_mask", m.fault_mask);
        emit_int(f, "n_samples", m.n_samples);
        emit_int(f, "channel_count", c);
        for (s = 0; s < m.n_samples; s++) {
            for (k = 0; k < c; k++) {
                list_a[i++] = ks_block_value(&m, s, k);
            }
        }
        emit_list(f, "samples", list_a, i);
        break;
    }
    case KS_MSG_DEVICE_EVENT: {
        ks_device_event m;
        CHECK_OK(ks_decode_device_event(p, n, &m));
        emit_int(f, "t_us", m.t_us);
        emit_int(f, "code", m.code);
        emit_int(f, "arg", m.arg);
        emit_int(f, "value", m.value);
        break;
    }
    case KS_MSG_STATUS: {
        ks_status m;
        CHECK_OK(ks_decode_status(p, n, &m));
        status_emit(f, "", &m);
        break;
    }
    case KS_MSG_LOG_TEXT: {
        ks_log_text m;
        CHECK_OK(ks_decode_log_text(p, n, &m));
        emit_int(f, "level", m.level);
        emit_hex(f, "text", (const uint8_t *)m.text, m.text_len);
        break;
    }
    case KS_MSG_COMMAND: {
        static ks_command c;
        CHECK_OK(ks_parse_command(p, n, &c));
        emit_int(f, "request_id", c.request_id);
        emit_int(f, "opcode", c.opcode);
        switch (c.opcode) {
        case KS_OP_PING:
            emit_hex(f, "data", c.arg.ping.data, c.arg.ping.len);
            break;
        case KS_OP_SET_STREAM_CONFIG:
            emit_int(f, "rate_hz", c.arg.set_stream_config.rate_hz);
            emit_int(f, "channel_mask", c.arg.set_stream_config.channel_mask);
            emit_int(f, "encoding", c.arg.set_stream_config.encoding);
            break;
        case KS_OP_TARE:
            emit_int(f, "channel_mask", c.arg.tare.channel_mask);
            emit_int(f, "n_samples", c.arg.tare.n_samples);
            break;
        case KS_OP_READ_CALIBRATION:
            emit_int(f, "offset", c.arg.read_calibration.offset);
            emit_int(f, "max_length", c.arg.read_calibration.max_length);
            break;
        case KS_OP_WRITE_CALIBRATION:
            emit_int(f, "offset", c.arg.write_calibration.offset);
            emit_int(f, "total_length", c.arg.write_calibration.total_length);
            emit_hex(f, "data", c.arg.write_calibration.data, c.arg.write_calibration.len);
            break;
        case KS_OP_COMMIT_CALIBRATION:
            emit_int(f, "calibration_id", c.arg.commit_calibration.calibration_id);
            emit_int(f, "total_length", c.arg.commit_calibration.total_length);
            emit_int(f, "crc", c.arg.commit_calibration.crc);
            break;
        case KS_OP_WRITE_THRESHOLDS:
            thresholds_emit(f, "", &c.arg.write_thresholds);
            break;
        default:
            if (!c.known) {
                emit_hex(f, "args", c.raw_args, c.raw_args_len);
            }
            break;
        }
        break;
    }
    case KS_MSG_RESPONSE: {
        ks_response r;
        CHECK_OK(ks_decode_response(p, n, &r));
        emit_int(f, "request_id", r.request_id);
        emit_int(f, "opcode", r.opcode);
        emit_int(f, "status", r.status);
        emit_hex(f, "result", r.result, r.result_len);
        if (r.status == KS_STATUS_OK && r.opcode >= KS_OP_PING && r.opcode <= KS_OP_GET_STATUS) {
            emit_result(f, &r);
        }
        break;
    }
    default:
        emit_int(f, "msg_type", type);
        emit_hex(f, "payload", p, n);
        break;
    }
}

/* ---------------------------------------------------------------- directives */

static char hex_out[2 * MAX_BYTES + 1];

static void check_bytes(const char *what, const uint8_t *got, size_t n, const uint8_t *want,
                        size_t m)
{
    if (n != m || memcmp(got, want, n) != 0) {
        fail("%s differs: got %s", what, to_hex(got, n < 200 ? n : 200, hex_out));
    }
}

static void do_crc(const kvs_t *kv)
{
    size_t n = kv_hex(kv, "data", bytes_a, MAX_BYTES);
    uint16_t crc = ks_crc16(bytes_a, n, KS_CRC_INIT);
    uint16_t half = ks_crc16(bytes_a, n / 2, KS_CRC_INIT);
    CHECK(crc == (uint16_t)kv_int(kv, "crc"));
    CHECK(ks_crc16(bytes_a + n / 2, n - n / 2, half) == crc); /* continuation */
}

static void do_cobs(const kvs_t *kv)
{
    size_t n = kv_hex(kv, "decoded", bytes_a, MAX_BYTES);
    size_t m = kv_hex(kv, "encoded", bytes_b, MAX_BYTES);
    size_t k = 0;
    CHECK_OK(ks_cobs_encode(bytes_a, n, bytes_c, KS_COBS_MAX_ENCODED(n), &k));
    check_bytes("encoded", bytes_c, k, bytes_b, m);
    if (k > 0) {
        CHECK(ks_cobs_encode(bytes_a, n, bytes_c, k - 1u, &k) == KS_ERR_SPACE);
    }
    CHECK_OK(ks_cobs_decode(bytes_b, m, bytes_c, MAX_BYTES, &k));
    check_bytes("decoded", bytes_c, k, bytes_a, n);
    /* in place */
    memcpy(bytes_c, bytes_b, m);
    CHECK_OK(ks_cobs_decode(bytes_c, m, bytes_c, m, &k));
    check_bytes("decoded in place", bytes_c, k, bytes_a, n);
}

/* Feed a whole stuffed buffer; returns the number of frames, last one in *out. */
static int stream_all(ks_stream_decoder *d, const uint8_t *p, size_t n, ks_frame *out,
                      uint8_t *copy, size_t *copy_len)
{
    size_t i;
    int frames = 0;
    ks_frame fr;
    for (i = 0; i < n; i++) {
        int rc = ks_stream_feed(d, p[i], &fr);
        if (rc == 1) {
            frames++;
            *out = fr;
            *copy_len = fr.payload_len;
            memcpy(copy, fr.payload, fr.payload_len);
        }
    }
    return frames;
}

static void do_frame(const kvs_t *kv)
{
    int type = (int)kv_int(kv, "type");
    uint16_t seq = (uint16_t)kv_int(kv, "seq");
    size_t pn = kv_hex(kv, "payload", bytes_a, MAX_BYTES);
    size_t fn = kv_hex(kv, "frame", bytes_b, MAX_BYTES);
    size_t k;
    size_t fl = 0;
    size_t sl = 0;
    static uint8_t frame[KS_MAX_FRAME_SIZE];
    static uint8_t stuffed[KS_MAX_STUFFED_SIZE];
    static ks_stream_decoder dec;
    ks_frame fr;
    CHECK(message_type_of(kv_need(kv, "message")) == type || message_type_of(kv_need(kv, "message")) < 0);

    /* encode: fields -> payload -> frame -> stream */
    k = encode_from_fields(kv, type, bytes_c, MAX_BYTES);
    check_bytes("payload", bytes_c, k, bytes_a, pn);
    CHECK_OK(ks_build_frame(frame, sizeof frame, (uint8_t)type, seq, bytes_c, k, &fl));
    check_bytes("frame", frame, fl, bytes_b, fn);
    CHECK_OK(ks_stuff_frame(frame, fl, stuffed, sizeof stuffed, &sl));
    k = kv_hex(kv, "stream", bytes_c, MAX_BYTES);
    check_bytes("stream", stuffed, sl, bytes_c, k);

    /* typed frame builders where there is one */
    {
        size_t bl = 0;
        ks_result r = KS_ERR_ARG;
        static uint8_t built[KS_MAX_FRAME_SIZE];
        switch (type) {
        case KS_MSG_DEVICE_INFO: {
            ks_device_info m;
            device_info_from(kv, "f.", &m);
            r = ks_build_device_info(built, sizeof built, seq, &m, &bl);
            break;
        }
        case KS_MSG_STREAM_CONFIG: {
            ks_stream_config m;
            stream_config_from(kv, "f.", &m);
            r = ks_build_stream_config(built, sizeof built, seq, &m, &bl);
            break;
        }
        case KS_MSG_STATUS: {
            ks_status m;
            status_from(kv, "f.", &m);
            r = ks_build_status(built, sizeof built, seq, &m, &bl);
            break;
        }
        case KS_MSG_SAMPLE_BLOCK: {
            /* the in-place builder, one sample at a time */
            ks_block_builder b;
            ks_sample_block head;
            unsigned c;
            unsigned s;
            memset(&head, 0, sizeof head);
            head.t_first_us = (uint32_t)kv_int(kv, "f.t_first_us");
            head.sample_index = (uint32_t)kv_int(kv, "f.sample_index");
            head.period_ns = (uint32_t)kv_int(kv, "f.period_ns");
            head.channel_mask = (uint8_t)kv_int(kv, "f.channel_mask");
            head.encoding = (uint8_t)kv_int(kv, "f.encoding");
            head.flags = (uint8_t)kv_int(kv, "f.flags");
            c = ks_popcount8(head.channel_mask);
            kv_list(kv, "f.samples", list_a, 4096);
            CHECK_OK(ks_block_begin(&b, built, sizeof built, &head));
            for (s = 0; s < (unsigned)kv_int(kv, "f.n_samples"); s++) {
                int32_t v[8];
                unsigned i;
                for (i = 0; i < c; i++) {
                    v[i] = (int32_t)list_a[s * c + i];
                }
                CHECK_OK(ks_block_add(&b, v));
            }
            ks_block_mark(&b, (uint8_t)kv_int(kv, "f.saturated_mask"),
                          (uint8_t)kv_int(kv, "f.fault_mask"));
            r = ks_block_finish(&b, seq, &bl);
            break;
        }
        case KS_MSG_COMMAND:
        case KS_MSG_RESPONSE:
        default:
            r = KS_OK;
            bl = fl;
            memcpy(built, frame, fl);
            break;
        case KS_MSG_DEVICE_EVENT: {
            ks_device_event m;
            m.t_us = (uint32_t)kv_int(kv, "f.t_us");
            m.code = (uint8_t)kv_int(kv, "f.code");
            m.arg = (uint8_t)kv_int(kv, "f.arg");
            m.value = (int32_t)kv_int(kv, "f.value");
            r = ks_build_device_event(built, sizeof built, seq, &m, &bl);
            break;
        }
        case KS_MSG_LOG_TEXT: {
            ks_log_text m;
            m.level = (uint8_t)kv_int(kv, "f.level");
            m.text_len = kv_hex(kv, "f.text", str_a, sizeof str_a);
            m.text = (const char *)str_a;
            r = ks_build_log_text(built, sizeof built, seq, &m, &bl);
            break;
        }
        }
        CHECK(r == KS_OK);
        check_bytes("typed builder frame", built, bl, bytes_b, fn);
    }

    /* responses: build with the response helpers, check the typed result */
    if (type == KS_MSG_RESPONSE) {
        ks_response rsp;
        ks_command cmd;
        static uint8_t built[KS_MAX_FRAME_SIZE];
        size_t bl = 0;
        CHECK_OK(ks_decode_response(bytes_a, pn, &rsp));
        memset(&cmd, 0, sizeof cmd);
        cmd.request_id = rsp.request_id;
        cmd.opcode = rsp.opcode;
        if (rsp.request_id == KS_UNREADABLE_REQUEST_ID && rsp.opcode == KS_UNREADABLE_OPCODE) {
            CHECK_OK(ks_build_unreadable_response(built, sizeof built, seq, &bl));
        } else if (rsp.result_len == 0) {
            CHECK_OK(ks_build_response_error(built, sizeof built, seq, &cmd, rsp.status, &bl));
        } else {
            /* result encoded in place, as firmware does */
            memcpy(KS_RESPONSE_RESULT(built), rsp.result, rsp.result_len);
            CHECK_OK(ks_build_response(built, sizeof built, seq, &cmd, rsp.status,
                                       KS_RESPONSE_RESULT(built), rsp.result_len, &bl));
        }
        check_bytes("response helper frame", built, bl, bytes_b, fn);
        if (rsp.status == KS_STATUS_OK && rsp.opcode >= KS_OP_PING &&
            rsp.opcode <= KS_OP_GET_STATUS) {
            check_result_encoders(kv, &rsp);
        }
    }

    /* decode: payload -> fields */
    decode_to_fields(type, bytes_a, pn, &emitted);
    compare_fields(kv, &emitted, "payload");
    /* frame (BLE packet) -> fields */
    CHECK_OK(ks_parse_frame(bytes_b, fn, &fr));
    CHECK(fr.type == type && fr.seq == seq && fr.payload_len == pn);
    /* stream -> the same frame, after a garbage prefix and across two copies */
    ks_stream_init(&dec);
    CHECK(ks_stream_feed(&dec, 0x55, &fr) == 0);
    CHECK(ks_stream_feed(&dec, 0x00, &fr) == KS_ERR_FRAMING);
    CHECK(stream_all(&dec, stuffed, sl, &fr, bytes_c, &k) == 1);
    CHECK(fr.type == type && fr.seq == seq);
    check_bytes("stream payload", bytes_c, k, bytes_a, pn);
    CHECK(stream_all(&dec, stuffed, sl, &fr, bytes_c, &k) == 1);
    CHECK(dec.stats.frames == 2 && dec.stats.framing_errors == 1 && dec.stats.bytes_discarded == 1);
    decode_to_fields(type, bytes_c, k, &emitted);
    compare_fields(kv, &emitted, "stream");
}

static void do_encode(const kvs_t *kv)
{
    const char *name = kv_need(kv, "message");
    int type = message_type_of(name);
    size_t n;
    size_t fl = 0;
    static uint8_t frame[KS_MAX_FRAME_SIZE];
    if (type < 0) {
        type = (int)kv_int(kv, "f.msg_type");
    }
    n = encode_from_fields(kv, type, bytes_c, MAX_BYTES);
    if (ks_build_frame(frame, sizeof frame, (uint8_t)type, (uint16_t)kv_int(kv, "seq"), bytes_c,
                       n, &fl) != KS_OK) {
        fail("ks_build_frame failed");
    }
    printf("frame %s\n", case_failed ? fail_msg : to_hex(frame, fl, hex_out));
}

static void do_decode(const kvs_t *kv)
{
    size_t n = kv_hex(kv, "frame", bytes_a, MAX_BYTES);
    ks_frame fr;
    ks_result r = ks_parse_frame(bytes_a, n, &fr);
    if (r != KS_OK) {
        printf("error %d\n", (int)r);
        return;
    }
    decode_to_fields(fr.type, fr.payload, fr.payload_len, &emitted);
    if (case_failed) {
        printf("error %s\n", fail_msg);
        return;
    }
    printf("fields message=%s seq=%u", message_name_of(fr.type), (unsigned)fr.seq);
    print_fields(&emitted);
    printf("\n");
}

/* The receive stack of the Python decoders, in C: frames from the stream
 * decoder (or ks_parse_frame for packets), message check, sequence tracking. */
typedef struct {
    ks_stream_decoder dec;
    ks_seq_tracker seq;
    uint32_t frames, bytes_in, bytes_discarded, crc_errors, framing_errors, oversize,
        version_errors, message_errors, unknown_types, seq_gaps, frames_lost, duplicates,
        seq_resets;
    char *out; /* delivered list */
    size_t out_len;
    int with_payload;
} rx_t;

static int known_type(uint8_t t)
{
    return (t >= KS_MSG_DEVICE_INFO && t <= KS_MSG_LOG_TEXT) || t == KS_MSG_COMMAND ||
           t == KS_MSG_RESPONSE;
}

static void rx_deliver(rx_t *rx, const ks_frame *fr, uint16_t lost)
{
    rx->out_len += (size_t)sprintf(rx->out + rx->out_len, "%s%u:%u:%u", rx->frames ? "," : "",
                                   (unsigned)fr->seq, (unsigned)fr->type, (unsigned)lost);
    if (rx->with_payload) {
        rx->out[rx->out_len++] = ':';
        to_hex(fr->payload, fr->payload_len, rx->out + rx->out_len);
        rx->out_len += 2 * fr->payload_len;
    }
    rx->frames++;
}

static void rx_seq(rx_t *rx, const ks_frame *fr, size_t size)
{
    uint16_t lost = 0;
    int kind = ks_seq_observe(&rx->seq, fr->seq, &lost);
    if (kind == KS_SEQ_DUPLICATE) {
        rx->duplicates++;
        rx->bytes_discarded += (uint32_t)size;
        return;
    }
    if (kind == KS_SEQ_GAP) {
        rx->seq_gaps++;
        rx->frames_lost += lost;
    } else if (kind == KS_SEQ_RESET) {
        rx->seq_resets++;
    }
    rx_deliver(rx, fr, lost);
}

static void rx_stream_frame(rx_t *rx, const ks_frame *fr)
{
    /* A valid COBS encoding of a frame of n bytes (n <= 244) is n + 1 bytes. */
    size_t enc = fr->payload_len + KS_FRAME_OVERHEAD + 1u;
    if (ks_check_message(fr->type, fr->payload, fr->payload_len) != KS_OK) {
        rx->message_errors++;
        rx->bytes_discarded += (uint32_t)enc;
        return;
    }
    if (!known_type(fr->type)) {
        rx->unknown_types++; /* counted before the duplicate check, as the Python decoders */
    }
    rx_seq(rx, fr, enc);
}

static void rx_packet(rx_t *rx, const uint8_t *p, size_t n)
{
    ks_frame fr;
    ks_result r = ks_parse_frame(p, n, &fr);
    rx->bytes_in += (uint32_t)n;
    if (r == KS_OK && ks_check_message(fr.type, fr.payload, fr.payload_len) != KS_OK) {
        r = KS_ERR_MESSAGE;
    }
    if (r != KS_OK) {
        rx->bytes_discarded += (uint32_t)n;
        if (r == KS_ERR_CRC) {
            rx->crc_errors++;
        } else if (r == KS_ERR_MESSAGE) {
            rx->message_errors++;
        } else if (n > KS_MAX_FRAME_SIZE) {
            rx->oversize++;
        } else if (r == KS_ERR_VERSION) {
            rx->version_errors++;
        } else {
            rx->framing_errors++;
        }
        return;
    }
    if (!known_type(fr.type)) {
        rx->unknown_types++; /* counted before the duplicate check, as the Python decoders */
    }
    {
        uint16_t lost = 0;
        int kind = ks_seq_observe(&rx->seq, fr.seq, &lost);
        if (kind == KS_SEQ_DUPLICATE) {
            rx->duplicates++;
            rx->bytes_discarded += (uint32_t)n;
            return;
        }
        if (kind == KS_SEQ_GAP) {
            rx->seq_gaps++;
            rx->frames_lost += lost;
        } else if (kind == KS_SEQ_RESET) {
            rx->seq_resets++;
        }
        rx_deliver(rx, &fr, lost);
    }
}

static void rx_stream_bytes(rx_t *rx, const uint8_t *p, size_t n)
{
    size_t i;
    ks_frame fr;
    for (i = 0; i < n; i++) {
        int rc = ks_stream_feed(&rx->dec, p[i], &fr);
        if (rc == 1) {
            rx_stream_frame(rx, &fr);
        }
        if (rx->dec.len > KS_MAX_FRAME_SIZE || rx->dec.enc_len > KS_MAX_ENCODED_SIZE) {
            fail("decoder state out of bounds");
        }
    }
}

static void rx_init(rx_t *rx, char *out, int with_payload)
{
    memset(rx, 0, sizeof *rx);
    ks_stream_init(&rx->dec);
    ks_seq_init(&rx->seq);
    rx->out = out;
    rx->out[0] = '\0';
    rx->with_payload = with_payload;
}

static void rx_finish_stream(rx_t *rx)
{
    rx->bytes_in = rx->dec.stats.bytes_in;
    rx->bytes_discarded += rx->dec.stats.bytes_discarded;
    rx->crc_errors = rx->dec.stats.crc_errors;
    rx->framing_errors = rx->dec.stats.framing_errors;
    rx->oversize = rx->dec.stats.oversize;
    rx->version_errors = rx->dec.stats.version_errors;
    /* frames that passed the frame checks = delivered + message errors + duplicates */
    if (rx->dec.stats.frames != rx->frames + rx->message_errors + rx->duplicates) {
        fail("stream decoder frame count inconsistent");
    }
}

#define RX_STATS(X)                                                                             \
    X(frames) X(bytes_in) X(bytes_discarded) X(crc_errors) X(framing_errors) X(oversize)       \
        X(version_errors) X(message_errors) X(unknown_types) X(seq_gaps) X(frames_lost)        \
            X(duplicates) X(seq_resets)

static void rx_print_stats(const rx_t *rx)
{
#define PRINT_STAT(name) printf(" stats.%s=%lu", #name, (unsigned long)rx->name);
    RX_STATS(PRINT_STAT)
#undef PRINT_STAT
}

static void rx_check_stats(const rx_t *rx, const kvs_t *kv)
{
#define CHECK_STAT(name)                                                                       \
    {                                                                                           \
        const char *v = kv_get(kv, "stats." #name);                                             \
        unsigned long want = v ? strtoul(v, NULL, 10) : 0ul;                                    \
        if (want != (unsigned long)rx->name) {                                                  \
            fail("stats.%s is %lu, expected %lu", #name, (unsigned long)rx->name, want);        \
        }                                                                                       \
    }
    RX_STATS(CHECK_STAT)
#undef CHECK_STAT
}

static char rx_out[4u << 20];
static rx_t rx_state;

static void do_reject(const kvs_t *kv)
{
    const char *framing = kv_need(kv, "framing");
    const char *s = kv_need(kv, "inputs");
    const char *want = kv_need(kv, "delivered");
    int packet = strcmp(framing, "packet") == 0;
    rx_t *rx = &rx_state;
    rx_init(rx, rx_out, 0);
    while (*s) {
        long n = parse_hex(s, bytes_a, MAX_BYTES);
        const char *comma = strchr(s, ',');
        if (n < 0) {
            fail("bad input hex");
            return;
        }
        if (packet) {
            rx_packet(rx, bytes_a, (size_t)n);
        } else {
            rx_stream_bytes(rx, bytes_a, (size_t)n);
        }
        if (comma == NULL) {
            break;
        }
        s = comma + 1;
    }
    if (!packet) {
        rx_finish_stream(rx);
    }
    if (strcmp(rx->out, want) != 0) {
        fail("delivered %s, expected %s", rx->out, want);
    }
    rx_check_stats(rx, kv);
}

static void do_stream(const kvs_t *kv)
{
    size_t n = kv_hex(kv, "data", bytes_a, MAX_BYTES);
    rx_t *rx = &rx_state;
    rx_init(rx, rx_out, 1);
    rx_stream_bytes(rx, bytes_a, n);
    rx_finish_stream(rx);
    printf("stream delivered=%s", rx->out);
    rx_print_stats(rx);
    printf("%s%s\n", case_failed ? " error=" : "", case_failed ? "1" : "");
}

static void do_load_index(const kvs_t *kv)
{
    ks_thresholds t;
    int32_t raw[KS_MAX_CHANNELS];
    size_t i;
    size_t n;
    memset(&t, 0, sizeof t);
    n = kv_list(kv, "zero", list_a, KS_MAX_CHANNELS);
    CHECK(kv_list(kv, "weight_q16", list_b, KS_MAX_CHANNELS) == n);
    CHECK(kv_list(kv, "raw", list_c, KS_MAX_CHANNELS) == n);
    t.channel_count = (uint8_t)n;
    for (i = 0; i < n; i++) {
        t.channels[i].zero = (int32_t)list_a[i];
        t.channels[i].weight_q16 = (int32_t)list_b[i];
        raw[i] = (int32_t)list_c[i];
    }
    if (ks_load_index(&t, raw) != kv_int(kv, "load_index")) {
        fail("load index %lld, expected %lld", (long long)ks_load_index(&t, raw),
             kv_int(kv, "load_index"));
    }
}

static void do_link(const kvs_t *kv)
{
    size_t mfs = ks_frame_size_for_mtu((uint16_t)kv_int(kv, "att_mtu"));
    CHECK((long long)mfs == kv_int(kv, "max_frame_size"));
    CHECK((long long)ks_max_samples(mfs, (unsigned)kv_int(kv, "channels"),
                                    (unsigned)kv_int(kv, "encoding")) == kv_int(kv, "max_samples"));
}

/* ------------------------------------------------------- BLE fragments (6.2) */

static char frag_out[1u << 16];

static void append_hex_item(char *out, size_t cap, const uint8_t *p, size_t n)
{
    size_t at = strlen(out);
    if (at + 2u * n + 2u >= cap) {
        fail("fragment output too long");
        return;
    }
    if (at > 0u) {
        out[at++] = ',';
    }
    to_hex(p, n, out + at);
}

static void do_fragment(const kvs_t *kv)
{
    static uint8_t piece[600];
    ks_fragmenter f;
    size_t n = kv_hex(kv, "frame", bytes_a, MAX_BYTES);
    size_t offset = 0;
    uint16_t mtu = (uint16_t)kv_int(kv, "att_mtu");
    const char *want = kv_need(kv, "fragments");
    ks_fragmenter_init(&f);
    f.counter = (uint8_t)kv_int(kv, "counter");
    frag_out[0] = '\0';
    while (offset < n) {
        size_t len = 0;
        if (ks_fragment_next(&f, bytes_a, n, &offset, mtu, piece, sizeof piece, &len) != KS_OK) {
            fail("ks_fragment_next failed at offset %lu", (unsigned long)offset);
            return;
        }
        if (len > (size_t)mtu - 3u) {
            fail("fragment of %lu bytes exceeds MTU - 3", (unsigned long)len);
        }
        append_hex_item(frag_out, sizeof frag_out, piece, len);
    }
    CHECK(strcmp(frag_out, want) == 0);
    CHECK(ks_fragment_next(&f, bytes_a, n, &offset, mtu, piece, sizeof piece, &n) == KS_ERR_ARG);
}

static void do_fragment_reject(const kvs_t *kv)
{
    static ks_reassembler r;
    const char *s = kv_need(kv, "inputs");
    const char *want = kv_need(kv, "delivered");
    ks_reassembler_init(&r);
    frag_out[0] = '\0';
    for (;;) {
        const char *comma = strchr(s, ',');
        long n = parse_hex(s, bytes_a, MAX_BYTES);
        const uint8_t *frame = NULL;
        size_t frame_len = 0;
        if (n < 0) {
            fail("bad input hex");
            return;
        }
        if (ks_reassemble_feed(&r, bytes_a, (size_t)n, &frame, &frame_len) == 1) {
            append_hex_item(frag_out, sizeof frag_out, frame, frame_len);
        }
        if (comma == NULL) {
            break;
        }
        s = comma + 1;
    }
    if (strcmp(frag_out, want) != 0) {
        fail("delivered %s, expected %s", frag_out, want);
    }
#define CHECK_FSTAT(name)                                                                      \
    {                                                                                           \
        const char *v = kv_get(kv, "stats." #name);                                             \
        unsigned long w = v ? strtoul(v, NULL, 10) : 0ul;                                       \
        if (w != (unsigned long)r.stats.name) {                                                 \
            fail("stats.%s is %lu, expected %lu", #name, (unsigned long)r.stats.name, w);       \
        }                                                                                       \
    }
    CHECK_FSTAT(fragments)
    CHECK_FSTAT(frames)
    CHECK_FSTAT(fragments_lost)
    CHECK_FSTAT(reordered)
    CHECK_FSTAT(frames_dropped)
    CHECK_FSTAT(orphans)
    CHECK_FSTAT(oversize)
    CHECK_FSTAT(malformed)
    CHECK_FSTAT(bytes_discarded)
#undef CHECK_FSTAT
}

/* ---------------------------------------------------------------- selftest */

static void selftest(void)
{
    static uint8_t frame[KS_MAX_FRAME_SIZE];
    static uint8_t frame2[KS_MAX_FRAME_SIZE];
    static uint8_t stuffed[KS_MAX_STUFFED_SIZE];
    static ks_stream_decoder dec;
    size_t fl = 0;
    size_t fl2 = 0;
    size_t sl = 0;
    size_t i;
    ks_frame fr;

    /* CRC check value and residue */
    CHECK(ks_crc16((const uint8_t *)"123456789", 9, KS_CRC_INIT) == 0x29B1u);

    /* asr16 is a floor for negative values, a plain shift otherwise */
    CHECK(ks_asr16(-1) == -1);
    CHECK(ks_asr16(-65536) == -1);
    CHECK(ks_asr16(-65537) == -2);
    CHECK(ks_asr16(65535) == 0);
    CHECK(ks_asr16(INT64_MIN) == -(INT64_C(1) << 47));
    CHECK(ks_asr16(INT64_MAX) == (INT64_C(1) << 47) - 1);

    /* load index at the extremes: exact product, wrap of the 64-bit sum */
    {
        ks_thresholds t;
        int32_t raw[2] = {INT32_MAX, INT32_MIN};
        memset(&t, 0, sizeof t);
        t.channel_count = 1;
        t.channels[0].zero = INT32_MIN;
        t.channels[0].weight_q16 = INT32_MIN;
        /* (2^32 - 1) * -2^31 >> 16 */
        CHECK(ks_load_index(&t, raw) == ks_asr16(-(((INT64_C(1) << 32) - 1) * (INT64_C(1) << 31))));
        t.channel_count = 2;
        t.channels[1].zero = INT32_MAX;
        t.channels[1].weight_q16 = INT32_MIN;
        (void)ks_load_index(&t, raw); /* wraps; must not trap under UBSan */
    }

    /* block builder: fills to capacity and agrees with the one-shot encoder */
    {
        ks_block_builder b;
        ks_sample_block head;
        int32_t v[4];
        int32_t all[4 * 255];
        unsigned n = 0;
        memset(&head, 0, sizeof head);
        head.t_first_us = 0x01020304u;
        head.sample_index = 77;
        head.period_ns = 4000000u;
        head.channel_mask = 0x0F;
        head.encoding = KS_INT24;
        CHECK_OK(ks_block_begin(&b, frame, KS_MAX_FRAME_SIZE, &head));
        CHECK(b.capacity == ks_max_samples(KS_MAX_FRAME_SIZE, 4, KS_INT24));
        while (!ks_block_full(&b)) {
            for (i = 0; i < 4; i++) {
                v[i] = (int32_t)(n * 4u + i) * 997 - 100000;
                all[n * 4u + i] = v[i];
            }
            CHECK_OK(ks_block_add(&b, v));
            n++;
        }
        CHECK(ks_block_add(&b, v) == KS_ERR_SPACE);
        ks_block_mark(&b, 0x02, 0x00);
        CHECK_OK(ks_block_finish(&b, 9, &fl));
        CHECK(fl <= KS_MAX_FRAME_SIZE);
        head.n_samples = (uint8_t)n;
        head.samples = all;
        head.saturated_mask = 0x02;
        CHECK_OK(ks_build_sample_block(frame2, sizeof frame2, 9, &head, &fl2));
        CHECK(fl == fl2 && memcmp(frame, frame2, fl) == 0);
        /* out of range values are refused */
        v[0] = 40000;
        head.encoding = KS_INT16;
        head.n_samples = 0;
        CHECK_OK(ks_block_begin(&b, frame, 20 + 8 + 18, &head));
        CHECK(ks_block_add(&b, v) == KS_ERR_RANGE);
        head.n_samples = 1;
        head.samples = v;
        CHECK(ks_encode_sample_block(&head, frame2, sizeof frame2, &fl2) == KS_ERR_RANGE);
        /* a frame too small for one sample */
        CHECK(ks_block_begin(&b, frame, 20, &head) == KS_ERR_SPACE);
        head.encoding = 5;
        CHECK(ks_block_begin(&b, frame, KS_MAX_FRAME_SIZE, &head) == KS_ERR_RANGE);
    }

    /* every builder reports a short buffer instead of writing past it */
    {
        ks_status st;
        memset(&st, 0, sizeof st);
        for (i = 0; i < 8 + 35; i++) {
            memset(frame, 0xAA, sizeof frame);
            CHECK(ks_build_status(frame, i, 1, &st, &fl) == KS_ERR_SPACE);
            CHECK(frame[i] == 0xAA || i < KS_HEADER_SIZE);
        }
        CHECK_OK(ks_build_status(frame, 8 + 35, 1, &st, &fl));
        CHECK(fl == 43);
        CHECK(ks_stuff_frame(frame, fl, stuffed, fl + 1, &sl) == KS_ERR_SPACE);
        CHECK_OK(ks_stuff_frame(frame, fl, stuffed, fl + 2, &sl));
        CHECK(ks_build_frame(frame, sizeof frame, 6, 0, frame2, KS_MAX_PAYLOAD_SIZE + 1, &fl) ==
              KS_ERR_RANGE);
    }

    /* commands: unreadable, malformed, unknown, capacity */
    {
        static ks_command cmd;
        uint8_t p[64];
        CHECK(ks_parse_command(p, 2, &cmd) == KS_ERR_MESSAGE);
        CHECK(cmd.request_id == 0xFFFF && cmd.opcode == 0xFF);
        /* the MALFORMED answer built from that cmd is the "unreadable" answer */
        CHECK_OK(ks_build_response_error(frame, sizeof frame, 4, &cmd, KS_STATUS_MALFORMED, &fl));
        CHECK_OK(ks_build_unreadable_response(frame2, sizeof frame2, 4, &fl2));
        CHECK(fl == fl2 && memcmp(frame, frame2, fl) == 0);
        p[0] = 0x34;
        p[1] = 0x12;
        p[2] = KS_OP_TARE;
        p[3] = 0x01;
        CHECK(ks_parse_command(p, 4, &cmd) == KS_ERR_MESSAGE); /* tare needs 3 arg bytes */
        CHECK(cmd.request_id == 0x1234 && cmd.opcode == KS_OP_TARE);
        p[2] = 0x7F;
        CHECK_OK(ks_parse_command(p, 4, &cmd));
        CHECK(!cmd.known && cmd.raw_args_len == 1);
        CHECK_OK(ks_build_response_error(frame, sizeof frame, 5, &cmd, KS_STATUS_UNKNOWN_COMMAND, &fl));
        CHECK_OK(ks_parse_frame(frame, fl, &fr));
        CHECK(fr.type == KS_MSG_RESPONSE && fr.payload_len == 4 && fr.payload[3] == 1);
        {
            static uint8_t big[3 + 18 + 8 * 9];
            memset(big, 0, sizeof big);
            big[2] = KS_OP_WRITE_THRESHOLDS;
            big[4] = 9;
            CHECK(ks_parse_command(big, sizeof big, &cmd) == KS_ERR_CAPACITY);
            CHECK(ks_check_message(KS_MSG_COMMAND, big, sizeof big) == KS_OK);
            CHECK(ks_parse_command(big, sizeof big - 1, &cmd) == KS_ERR_MESSAGE);
        }
        CHECK_OK(ks_build_unreadable_response(frame, sizeof frame, 0, &fl));
        CHECK_OK(ks_parse_frame(frame, fl, &fr));
        CHECK(fr.payload[0] == 0xFF && fr.payload[1] == 0xFF && fr.payload[2] == 0xFF &&
              fr.payload[3] == KS_STATUS_MALFORMED);
    }

    /* stream decoder: an oversize run is dropped once, then it resynchronises */
    {
        ks_log_text lt;
        int got = 0;
        lt.level = 20;
        lt.text = "resync";
        lt.text_len = 6;
        CHECK_OK(ks_build_log_text(frame, sizeof frame, 3, &lt, &fl));
        CHECK_OK(ks_stuff_frame(frame, fl, stuffed, sizeof stuffed, &sl));
        ks_stream_init(&dec);
        for (i = 0; i < 1000; i++) {
            int rc = ks_stream_feed(&dec, 0x55, &fr);
            CHECK(rc == (i == KS_MAX_ENCODED_SIZE ? KS_ERR_OVERSIZE : 0));
        }
        for (i = 0; i < sl; i++) { /* its first bytes still belong to the oversize run */
            got += ks_stream_feed(&dec, stuffed[i], &fr) == 1;
        }
        CHECK(got == 0 && dec.stats.oversize == 1);
        for (i = 0; i < sl; i++) {
            got += ks_stream_feed(&dec, stuffed[i], &fr) == 1;
        }
        CHECK(got == 1 && dec.stats.frames == 1);
        CHECK(dec.stats.bytes_discarded == 1000 + sl - 1);
    }

    /* sequence tracker */
    {
        ks_seq_tracker t;
        uint16_t lost = 0;
        ks_seq_init(&t);
        CHECK(ks_seq_observe(&t, 0xFFFF, &lost) == KS_SEQ_NEXT);
        CHECK(ks_seq_observe(&t, 0, &lost) == KS_SEQ_NEXT);
        CHECK(ks_seq_observe(&t, 0, &lost) == KS_SEQ_DUPLICATE);
        CHECK(ks_seq_observe(&t, 5, &lost) == KS_SEQ_GAP && lost == 4);
        CHECK(ks_seq_observe(&t, 2, &lost) == KS_SEQ_RESET && lost == 0);
    }

    /* MTU helper and NULL handling */
    CHECK(ks_frame_size_for_mtu(0) == KS_MIN_FRAME_SIZE);
    CHECK(ks_frame_size_for_mtu(23) == 20);
    CHECK(ks_frame_size_for_mtu(512) == KS_MAX_FRAME_SIZE);
    CHECK(ks_parse_frame(NULL, 0, &fr) == KS_ERR_ARG);
    CHECK(ks_stream_feed(NULL, 0, &fr) == KS_ERR_ARG);
    CHECK(ks_cobs_encode(NULL, 1, stuffed, 4, &sl) == KS_ERR_ARG);
}

/* ---------------------------------------------------------------- main */

int main(void)
{
    static kvs_t kv;
    setvbuf(stdout, NULL, _IOFBF, 1u << 16);
    while (fgets(line_buf, sizeof line_buf, stdin) != NULL) {
        const char *name;
        char *word;
        if (strlen(line_buf) == sizeof line_buf - 1u) {
            fprintf(stderr, "line too long\n");
            return 2;
        }
        word = tokenise(line_buf, &kv);
        if (word == NULL || word[0] == '#') {
            continue;
        }
        name = kv_get(&kv, "name");
        begin_case(name ? name : word);
        if (strcmp(word, "crc") == 0) {
            do_crc(&kv);
        } else if (strcmp(word, "cobs") == 0) {
            do_cobs(&kv);
        } else if (strcmp(word, "frame") == 0) {
            do_frame(&kv);
        } else if (strcmp(word, "reject") == 0) {
            do_reject(&kv);
        } else if (strcmp(word, "load_index") == 0) {
            do_load_index(&kv);
        } else if (strcmp(word, "link") == 0) {
            do_link(&kv);
        } else if (strcmp(word, "fragment") == 0) {
            do_fragment(&kv);
        } else if (strcmp(word, "fragment_reject") == 0) {
            do_fragment_reject(&kv);
        } else if (strcmp(word, "selftest") == 0) {
            selftest();
        } else if (strcmp(word, "encode") == 0) {
            do_encode(&kv);
            continue;
        } else if (strcmp(word, "decode") == 0) {
            do_decode(&kv);
            continue;
        } else if (strcmp(word, "stream") == 0) {
            do_stream(&kv);
            continue;
        } else {
            fail("unknown directive %s", word);
        }
        end_case();
    }
    printf("summary checks=%d failures=%d\n", checks, failures);
    return failures ? 1 : 0;
}
