/* HIL firmware: answers HELLO, ECHO and INFER frames on the board UART (protocol
 * in docs/hil_protocol.md). Counts come from ereid_cycles_now(): SysTick ticks on
 * QEMU boards, DWT cycles on real M4/M7 parts, nanoseconds on the host build; the
 * host scales them. */
#include <stddef.h>
#include <stdint.h>

#include "ereid_board.h"
#include "hil_protocol.h"
#include "model.h"

#define ECHO_CAPACITY 256u
#define RX_CAPACITY (EREID_MODEL_INPUT_BYTES > ECHO_CAPACITY ? EREID_MODEL_INPUT_BYTES : ECHO_CAPACITY)
/* A model without layers still gets a one-entry table, so the array is legal C. */
#define LAYER_SLOTS (EREID_MODEL_NUM_LAYERS > 0 ? EREID_MODEL_NUM_LAYERS : 1)

/* Header, payload (16-byte aligned: the model reads its input in place) and CRC. */
static uint8_t rx_frame[EREID_HIL_RX_BUFFER_BYTES(RX_CAPACITY)] __attribute__((aligned(16)));
static uint8_t model_output[EREID_MODEL_OUTPUT_BYTES] __attribute__((aligned(16)));
static uint64_t layer_counts[LAYER_SLOTS];
static uint64_t layer_started;

#ifdef EREID_LAYER_DUMP
static void dump_after_layer(int layer);
#endif

/* Called by the generated model around each layer when built with
 * -DEREID_LAYER_HOOK; the counter read is outside the measured span. */
void ereid_layer_hook(int layer, int after)
{
    uint64_t now = ereid_cycles_now();
    if (layer < 0 || layer >= (int)LAYER_SLOTS) {
        return;
    }
    if (after) {
        layer_counts[layer] += now - layer_started;
        /* Exclude the hook's own counter read from the next layer. */
        layer_started = ereid_cycles_now();
    } else {
        layer_started = now;
    }
#ifdef EREID_LAYER_DUMP
    if (after) {
        dump_after_layer(layer);
    }
#endif
}

#ifdef EREID_LAYER_DUMP
/* edgereid diff: a DUMP request runs the model as INFER does and streams every layer's
 * outputs from the layer hook, right after the layer ran (a later layer may reuse the
 * arena bytes). Reply: u32 records | records | i32 status; record = u32 layer | u32
 * output | u32 ran | u32 bytes | the bytes (zeros when the layer did not run). */
const int8_t *ereid_model_layer_output(int layer, int k, const void *input, void *output, uint32_t *bytes);

static ereid_hil_tx_t dump_tx;
static const uint8_t *dump_input;
static int dump_active;
static int dump_next_layer;

static void dump_layer(int layer, uint32_t ran)
{
    static const uint8_t zeros[64];
    int k;
    for (k = 0; k < 256; k++) {
        uint32_t bytes;
        const int8_t *data = ereid_model_layer_output(layer, k, dump_input, model_output, &bytes);
        if (data == NULL) {
            break;
        }
        ereid_hil_send_u32(&dump_tx, (uint32_t)layer);
        ereid_hil_send_u32(&dump_tx, (uint32_t)k);
        ereid_hil_send_u32(&dump_tx, ran);
        ereid_hil_send_u32(&dump_tx, bytes);
        if (ran) {
            ereid_hil_send_bytes(&dump_tx, data, bytes);
        } else {
            while (bytes > 0u) {
                uint32_t n = bytes < sizeof zeros ? bytes : (uint32_t)sizeof zeros;
                ereid_hil_send_bytes(&dump_tx, zeros, n);
                bytes -= n;
            }
        }
    }
}

/* Streams the layers up to `layer` (the hook runs after every layer, in order). */
static void dump_after_layer(int layer)
{
    while (dump_active && dump_next_layer <= layer && dump_next_layer < EREID_MODEL_NUM_LAYERS) {
        dump_layer(dump_next_layer, 1u);
        dump_next_layer++;
    }
}

static void reply_dump(uint8_t seq, const uint8_t *input)
{
    uint32_t records = 0u;
    uint32_t length = 4u + 4u;
    int layer;
    int k;
    int status;
    for (layer = 0; layer < EREID_MODEL_NUM_LAYERS; layer++) {
        for (k = 0; k < 256; k++) {
            uint32_t bytes;
            if (ereid_model_layer_output(layer, k, input, model_output, &bytes) == NULL) {
                break;
            }
            records++;
            length += 16u + bytes;
        }
    }
    ereid_hil_send_begin(&dump_tx, EREID_HIL_DUMP | EREID_HIL_REPLY, seq, length);
    ereid_hil_send_u32(&dump_tx, records);
    dump_input = input;
    dump_next_layer = 0;
    dump_active = 1;
    status = ereid_model_invoke(input, model_output);
    dump_active = 0;
    /* A failed layer ends the run: the layers after it are sent as not run. */
    while (dump_next_layer < EREID_MODEL_NUM_LAYERS) {
        dump_layer(dump_next_layer, 0u);
        dump_next_layer++;
    }
    ereid_hil_send_u32(&dump_tx, (uint32_t)status);
    ereid_hil_send_end(&dump_tx);
}
#endif

#ifdef EREID_MODEL_NUM_VARIANTS
/* Multi-variant image (edgereid build-firmware --variant): a VARIANT request (u32 index)
 * selects whose constants the next INFERs use. Reply: i32 status (0, or -1 for an index
 * out of range: the selection is then unchanged) | u32 number of variants. */
static void reply_variant(uint8_t seq, const uint8_t *payload)
{
    ereid_hil_tx_t tx;
    uint32_t index = (uint32_t)payload[0] | ((uint32_t)payload[1] << 8) | ((uint32_t)payload[2] << 16) |
                     ((uint32_t)payload[3] << 24);
    int status = index < (uint32_t)EREID_MODEL_NUM_VARIANTS ? ereid_model_set_variant((int)index) : -1;
    ereid_hil_send_begin(&tx, EREID_HIL_VARIANT | EREID_HIL_REPLY, seq, 8u);
    ereid_hil_send_u32(&tx, (uint32_t)status);
    ereid_hil_send_u32(&tx, (uint32_t)EREID_MODEL_NUM_VARIANTS);
    ereid_hil_send_end(&tx);
}
#endif

static void reply_hello(uint8_t seq)
{
    ereid_hil_tx_t tx;
    const char *core = ereid_board_core();
    uint8_t fixed[4];
    uint8_t core_len = 0;
    while (core[core_len] != '\0' && core_len < 255u) {
        core_len++;
    }
    fixed[0] = (uint8_t)EREID_HIL_VERSION;
    fixed[1] = (uint8_t)(EREID_HIL_VERSION >> 8);
    fixed[2] = (uint8_t)ereid_cycles_unit();
    fixed[3] = 0u;
    ereid_hil_send_begin(&tx, EREID_HIL_HELLO | EREID_HIL_REPLY, seq, 4u + 5u * 4u + 1u + core_len);
    ereid_hil_send_bytes(&tx, fixed, sizeof fixed);
    ereid_hil_send_u32(&tx, EREID_MODEL_INPUT_BYTES);
    ereid_hil_send_u32(&tx, EREID_MODEL_OUTPUT_BYTES);
    ereid_hil_send_u32(&tx, EREID_MODEL_NUM_LAYERS);
    ereid_hil_send_u32(&tx, ereid_board_clock_hz());
    ereid_hil_send_u32(&tx, RX_CAPACITY);
    ereid_hil_send_bytes(&tx, &core_len, 1u);
    ereid_hil_send_bytes(&tx, core, core_len);
    ereid_hil_send_end(&tx);
}

static void reply_infer(uint8_t seq, const uint8_t *input)
{
    ereid_hil_tx_t tx;
    uint32_t i;
    uint32_t layers_reported = 0;
    uint64_t total;
    int status;

    for (i = 0; i < LAYER_SLOTS; i++) {
        layer_counts[i] = 0;
    }
    ereid_cycles_start();
    status = ereid_model_invoke(input, model_output);
    total = ereid_cycles_stop();
#ifdef EREID_LAYER_HOOK
    layers_reported = EREID_MODEL_NUM_LAYERS;
#endif
    ereid_hil_send_begin(&tx, EREID_HIL_INFER | EREID_HIL_REPLY, seq,
                         4u + 8u + 4u + 8u * layers_reported + EREID_MODEL_OUTPUT_BYTES);
    ereid_hil_send_u32(&tx, (uint32_t)status);
    ereid_hil_send_u64(&tx, total);
    ereid_hil_send_u32(&tx, layers_reported);
    for (i = 0; i < layers_reported; i++) {
        ereid_hil_send_u64(&tx, layer_counts[i]);
    }
    ereid_hil_send_bytes(&tx, model_output, EREID_MODEL_OUTPUT_BYTES);
    ereid_hil_send_end(&tx);
}

/* Which payload lengths each request may have: anything else is refused before its
 * payload is read (a corrupted length must not make the device wait for bytes). */
static uint16_t check_request(uint8_t type, uint32_t length)
{
    switch (type) {
    case EREID_HIL_HELLO:
        return length == 0u ? 0u : (uint16_t)EREID_HIL_ERR_BAD_LENGTH;
    case EREID_HIL_ECHO:
        return length <= ECHO_CAPACITY ? 0u : (uint16_t)EREID_HIL_ERR_BAD_LENGTH;
    case EREID_HIL_INFER:
        return length == EREID_MODEL_INPUT_BYTES ? 0u : (uint16_t)EREID_HIL_ERR_BAD_LENGTH;
#ifdef EREID_LAYER_DUMP
    case EREID_HIL_DUMP:
        return length == EREID_MODEL_INPUT_BYTES ? 0u : (uint16_t)EREID_HIL_ERR_BAD_LENGTH;
#endif
#ifdef EREID_MODEL_NUM_VARIANTS
    case EREID_HIL_VARIANT:
        return length == 4u ? 0u : (uint16_t)EREID_HIL_ERR_BAD_LENGTH;
#endif
    default:
        return (uint16_t)EREID_HIL_ERR_UNKNOWN_TYPE;
    }
}

static const char *error_message(int code)
{
    switch (code) {
    case EREID_HIL_ERR_BAD_CRC:
        return "bad CRC";
    case EREID_HIL_ERR_BAD_LENGTH:
        return "length not accepted (HELLO 0, ECHO up to 256, INFER EREID_MODEL_INPUT_BYTES)";
    default:
        return "unknown frame type";
    }
}

int main(void)
{
    ereid_hil_rx_t rx;
    ereid_hil_header_t header;
    ereid_board_init();
    ereid_hil_rx_init(&rx, rx_frame, RX_CAPACITY);
    for (;;) {
        int code = ereid_hil_receive(&rx, &header, check_request);
        const uint8_t *payload = ereid_hil_rx_payload(&rx);
        if (code != EREID_HIL_RX_OK) {
            ereid_hil_send_error(header.seq, (uint16_t)code, header.type, error_message(code));
            continue;
        }
        switch (header.type) {
        case EREID_HIL_HELLO:
            reply_hello(header.seq);
            break;
        case EREID_HIL_ECHO: {
            ereid_hil_tx_t tx;
            ereid_hil_send_begin(&tx, EREID_HIL_ECHO | EREID_HIL_REPLY, header.seq, header.length);
            ereid_hil_send_bytes(&tx, payload, header.length);
            ereid_hil_send_end(&tx);
            break;
        }
#ifdef EREID_LAYER_DUMP
        case EREID_HIL_DUMP:
            reply_dump(header.seq, payload);
            break;
#endif
#ifdef EREID_MODEL_NUM_VARIANTS
        case EREID_HIL_VARIANT:
            reply_variant(header.seq, payload);
            break;
#endif
        default: /* EREID_HIL_INFER: check_request let nothing else through */
            reply_infer(header.seq, payload);
            break;
        }
    }
}
