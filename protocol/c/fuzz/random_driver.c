/*
 * random_driver.c -- runs LLVMFuzzerTestOneInput on random inputs for a fixed
 * time, for compilers without libFuzzer (build with -fsanitize=address,undefined).
 *
 *   random_driver [seconds [seed]]     default 2 s, seed 1
 *
 * Inputs mix pure noise, runs of valid stuffed frames with bit flips, byte
 * drops and inserted delimiters, and payloads of every message type.
 */
#include "knotsense_protocol.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t state;

static uint32_t rnd(void)
{
    /* xorshift64* */
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return (uint32_t)((state * UINT64_C(2685821657736338717)) >> 32);
}

static size_t make_input(uint8_t *buf, size_t cap)
{
    size_t n = 0;
    uint32_t mode = rnd() % 4u;
    if (mode == 0u) { /* noise, sometimes zero-heavy */
        size_t len = rnd() % 600u;
        uint32_t zeros = rnd() % 8u;
        for (n = 0; n < len && n < cap; n++) {
            buf[n] = zeros && rnd() % (zeros * 8u) == 0u ? 0u : (uint8_t)rnd();
        }
        return n;
    }
    if (mode == 1u) { /* a message type byte and a random payload */
        static const uint8_t types[] = {1, 2, 3, 4, 5, 6, 0x10, 0x11, 0x7E};
        size_t len = rnd() % 240u;
        buf[0] = types[rnd() % sizeof types];
        for (n = 1; n <= len && n < cap; n++) {
            buf[n] = (uint8_t)(rnd() % 4u == 0u ? rnd() % 8u : rnd());
        }
        if (buf[0] == 0x10 && n > 3) {
            buf[3] = (uint8_t)(rnd() % 16u); /* a mostly known opcode */
        }
        return n;
    }
    /* valid stuffed frames, then damage */
    {
        size_t frames = 1u + rnd() % 6u;
        size_t f;
        size_t k;
        for (f = 0; f < frames; f++) {
            uint8_t payload[KS_MAX_PAYLOAD_SIZE];
            uint8_t frame[KS_MAX_FRAME_SIZE];
            size_t pl = rnd() % (KS_MAX_PAYLOAD_SIZE + 1u);
            size_t fl = 0;
            size_t sl = 0;
            for (k = 0; k < pl; k++) {
                payload[k] = (uint8_t)(rnd() % 3u == 0u ? 0u : rnd());
            }
            if (ks_build_frame(frame, sizeof frame, (uint8_t)(rnd() % 0x12u), (uint16_t)rnd(),
                               payload, pl, &fl) != KS_OK ||
                cap - n < KS_MAX_STUFFED_SIZE) {
                break;
            }
            if (ks_stuff_frame(frame, fl, buf + n, cap - n, &sl) != KS_OK) {
                break;
            }
            n += sl;
        }
        if (mode == 3u) {
            size_t hits = 1u + rnd() % 4u;
            for (k = 0; k < hits && n > 0; k++) {
                size_t at = rnd() % n;
                switch (rnd() % 3u) {
                case 0: buf[at] ^= (uint8_t)(1u << (rnd() % 8u)); break;
                case 1: memmove(buf + at, buf + at + 1, n - at - 1); n--; break;
                default: buf[at] = 0u; break;
                }
            }
        }
        return n;
    }
}

int main(int argc, char **argv)
{
    static uint8_t buf[8192];
    double seconds = argc > 1 ? atof(argv[1]) : 2.0;
    unsigned long seed = argc > 2 ? strtoul(argv[2], NULL, 10) : 1ul;
    clock_t start = clock();
    unsigned long runs = 0;
    state = (uint64_t)seed * UINT64_C(0x9E3779B97F4A7C15) + 1u;
    do {
        int i;
        for (i = 0; i < 64; i++) {
            size_t n = make_input(buf, sizeof buf);
            LLVMFuzzerTestOneInput(buf, n);
            runs++;
        }
    } while ((double)(clock() - start) < seconds * CLOCKS_PER_SEC);
    printf("random_driver: %lu inputs in %.1f s, no failure\n", runs, seconds);
    return 0;
}
