/* HIL firmware: answers HELLO, ECHO and INFER frames on the board UART (protocol
 * in docs/hil_protocol.md). Counts come from ereid_cycles_now(): SysTick ticks on
 * QEMU boards, DWT cycles on real M4/M7 parts, nanoseconds on the host build; the
 * host scales them. */
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
}

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
        default: /* EREID_HIL_INFER: check_request let nothing else through */
            reply_infer(header.seq, payload);
            break;
        }
    }
}
