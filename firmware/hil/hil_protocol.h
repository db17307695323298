/* HIL framing over a byte stream (see docs/hil_protocol.md; host side:
 * edgereid/hil/protocol.py, whose constants must match these).
 *
 *   frame = magic(2) | type(1) | seq(1) | length(4, LE) | payload | crc32(4, LE)
 *   crc32 = IEEE 802.3 CRC-32 (zlib.crc32) of type..payload */
#ifndef EREID_HIL_PROTOCOL_H
#define EREID_HIL_PROTOCOL_H

#include <stdint.h>

#define EREID_HIL_MAGIC0 0xE7u
#define EREID_HIL_MAGIC1 0x1Du
#define EREID_HIL_VERSION 1u
#define EREID_HIL_HEADER_BYTES 8u
#define EREID_HIL_CRC_BYTES 4u

/* Requests (host -> device); a reply carries the request type | 0x80. */
enum ereid_hil_type {
    EREID_HIL_HELLO = 0x01,
    EREID_HIL_INFER = 0x02,
    EREID_HIL_ECHO = 0x03,
    EREID_HIL_DUMP = 0x04,   /* images built with -DEREID_LAYER_DUMP (edgereid diff) */
    EREID_HIL_VARIANT = 0x05, /* multi-variant images (model.h defines EREID_MODEL_NUM_VARIANTS) */
    EREID_HIL_REPLY = 0x80,
    EREID_HIL_ERROR = 0x7F
};

/* ERROR payload: code(u16 LE) | bad frame's type(u8) | message bytes. */
enum ereid_hil_error {
    EREID_HIL_ERR_BAD_CRC = 1,
    EREID_HIL_ERR_BAD_LENGTH = 2,
    EREID_HIL_ERR_UNKNOWN_TYPE = 3,
    EREID_HIL_ERR_MODEL_FAILED = 4
};

uint32_t ereid_crc32_update(uint32_t crc, const uint8_t *data, uint32_t len);

typedef struct {
    uint8_t type;
    uint8_t seq;
    uint32_t length;
} ereid_hil_header_t;

/* Receive buffer layout: the 6 header bytes after the magic end at
 * EREID_HIL_PAYLOAD_OFFSET, the payload starts there (16-byte aligned when the
 * buffer is), its CRC follows. A buffer for payloads up to `capacity` bytes: */
#define EREID_HIL_PAYLOAD_OFFSET 16u
#define EREID_HIL_RX_BUFFER_BYTES(capacity) (EREID_HIL_PAYLOAD_OFFSET + (capacity) + EREID_HIL_CRC_BYTES)

/* Receiver state. After a rejected frame (bad CRC, length or type) every byte
 * read after its magic is parsed again, so a real frame that started inside the
 * rejected one (a dropped byte, a corrupted length) is still found. The bytes
 * to parse again stay in `buffer` at [replay_pos, replay_end). */
typedef struct {
    uint8_t *buffer;      /* EREID_HIL_RX_BUFFER_BYTES(capacity) bytes */
    uint32_t capacity;    /* largest payload accepted, whatever the type */
    uint32_t replay_pos;
    uint32_t replay_end;
} ereid_hil_rx_t;

void ereid_hil_rx_init(ereid_hil_rx_t *rx, uint8_t *buffer, uint32_t capacity);

/* The payload of the last frame received (inside rx->buffer). */
uint8_t *ereid_hil_rx_payload(const ereid_hil_rx_t *rx);

/* Says whether a header may be followed by its payload: 0 to read it, else the
 * EREID_HIL_ERR_* code to reject the frame with (its payload is then not read,
 * so a corrupted length never makes the receiver wait for bytes that will not come). */
typedef uint16_t (*ereid_hil_check_fn)(uint8_t type, uint32_t length);

/* Outcome of ereid_hil_receive(): EREID_HIL_RX_OK, or the EREID_HIL_ERR_* code of
 * a rejected frame (`header` then holds what was read, for the ERROR reply). */
enum ereid_hil_rx {
    EREID_HIL_RX_OK = 0
};

/* Blocks until a frame arrives; skips bytes until the magic. A length above
 * rx->capacity is EREID_HIL_ERR_BAD_LENGTH, then `check` (may be NULL) decides;
 * a CRC mismatch is EREID_HIL_ERR_BAD_CRC. */
int ereid_hil_receive(ereid_hil_rx_t *rx, ereid_hil_header_t *header, ereid_hil_check_fn check);

/* A reply is streamed: begin (header), any number of bytes() calls totalling
 * `length`, then end (CRC). Nothing is buffered. */
typedef struct {
    uint32_t crc;
} ereid_hil_tx_t;

void ereid_hil_send_begin(ereid_hil_tx_t *tx, uint8_t type, uint8_t seq, uint32_t length);
void ereid_hil_send_bytes(ereid_hil_tx_t *tx, const void *data, uint32_t len);
void ereid_hil_send_u32(ereid_hil_tx_t *tx, uint32_t value);
void ereid_hil_send_u64(ereid_hil_tx_t *tx, uint64_t value);
void ereid_hil_send_end(ereid_hil_tx_t *tx);

void ereid_hil_send_error(uint8_t seq, uint16_t code, uint8_t bad_type, const char *message);

#endif
