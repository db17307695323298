/* HIL framing: CRC-32, frame receive and streamed send over the board UART. */
#include "hil_protocol.h"

#include "ereid_board.h"

/* Nibble table for the reflected IEEE polynomial 0xEDB88320: 64 bytes of
 * table instead of 1 KiB, fast enough for a UART. */
static const uint32_t crc_nibble_table[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu,
    0x76DC4190u, 0x6B6B51F4u, 0x4DB26158u, 0x5005713Cu,
    0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
    0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu,
};

/* `crc` is the running value as zlib.crc32 returns it (start with 0). */
uint32_t ereid_crc32_update(uint32_t crc, const uint8_t *data, uint32_t len)
{
    crc = ~crc;
    while (len--) {
        crc ^= *data++;
        crc = (crc >> 4) ^ crc_nibble_table[crc & 0xFu];
        crc = (crc >> 4) ^ crc_nibble_table[crc & 0xFu];
    }
    return ~crc;
}

static uint32_t read_u32_le(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static void put_u32_le(uint8_t *p, uint32_t value)
{
    p[0] = (uint8_t)value;
    p[1] = (uint8_t)(value >> 8);
    p[2] = (uint8_t)(value >> 16);
    p[3] = (uint8_t)(value >> 24);
}

/* Where the 6 header bytes after the magic start: the header, payload and CRC of a
 * frame are contiguous, so a rejected frame can be parsed again in place. */
#define FRAME_OFFSET (EREID_HIL_PAYLOAD_OFFSET - (EREID_HIL_HEADER_BYTES - 2u))

void ereid_hil_rx_init(ereid_hil_rx_t *rx, uint8_t *buffer, uint32_t capacity)
{
    rx->buffer = buffer;
    rx->capacity = capacity;
    rx->replay_pos = 0u;
    rx->replay_end = 0u;
}

uint8_t *ereid_hil_rx_payload(const ereid_hil_rx_t *rx)
{
    return rx->buffer + EREID_HIL_PAYLOAD_OFFSET;
}

/* The next byte of the stream: bytes left to parse again first, then the UART. */
static uint8_t next_byte(ereid_hil_rx_t *rx)
{
    if (rx->replay_pos < rx->replay_end) {
        return rx->buffer[rx->replay_pos++];
    }
    return ereid_uart_getc();
}

/* Reads `len` stream bytes to buffer[at..at+len). Safe while replaying: every
 * byte is read from at least two positions further on (the magic came first). */
static void read_bytes(ereid_hil_rx_t *rx, uint32_t at, uint32_t len)
{
    uint32_t i;
    for (i = 0; i < len; i++) {
        rx->buffer[at + i] = next_byte(rx);
    }
}

/* A frame whose `consumed` bytes after the magic sit at buffer[FRAME_OFFSET..] was
 * rejected: parse them again, followed by whatever was still to be parsed again. */
static void replay_after_reject(ereid_hil_rx_t *rx, uint32_t consumed)
{
    uint32_t dst = FRAME_OFFSET + consumed;
    uint32_t left = rx->replay_end - rx->replay_pos;
    uint32_t i;
    /* Move the unread rest down to follow the frame (it never sits before it). */
    for (i = 0; i < left; i++) {
        rx->buffer[dst + i] = rx->buffer[rx->replay_pos + i];
    }
    rx->replay_pos = FRAME_OFFSET;
    rx->replay_end = dst + left;
}

int ereid_hil_receive(ereid_hil_rx_t *rx, ereid_hil_header_t *header, ereid_hil_check_fn check)
{
    const uint8_t *head = rx->buffer + FRAME_OFFSET;
    uint32_t crc;
    uint32_t consumed = EREID_HIL_HEADER_BYTES - 2u;
    int code;
    uint8_t byte = next_byte(rx);

    /* Hunt for the two magic bytes; a stray MAGIC0 may precede the real one. */
    for (;;) {
        if (byte != EREID_HIL_MAGIC0) {
            byte = next_byte(rx);
            continue;
        }
        byte = next_byte(rx);
        if (byte == EREID_HIL_MAGIC1) {
            break;
        }
    }
    read_bytes(rx, FRAME_OFFSET, EREID_HIL_HEADER_BYTES - 2u);
    header->type = head[0];
    header->seq = head[1];
    header->length = read_u32_le(&head[2]);
    /* The length is not trusted yet: check it before waiting for that many bytes. */
    if (header->length > rx->capacity) {
        code = EREID_HIL_ERR_BAD_LENGTH;
    } else {
        code = check != 0 ? (int)check(header->type, header->length) : 0;
    }
    if (code == 0) {
        read_bytes(rx, EREID_HIL_PAYLOAD_OFFSET, header->length + EREID_HIL_CRC_BYTES);
        consumed += header->length + EREID_HIL_CRC_BYTES;
        crc = ereid_crc32_update(0u, head, consumed - EREID_HIL_CRC_BYTES);
        if (crc == read_u32_le(&head[consumed - EREID_HIL_CRC_BYTES])) {
            return EREID_HIL_RX_OK;
        }
        code = EREID_HIL_ERR_BAD_CRC;
    }
    replay_after_reject(rx, consumed);
    return code;
}

void ereid_hil_send_begin(ereid_hil_tx_t *tx, uint8_t type, uint8_t seq, uint32_t length)
{
    uint8_t head[EREID_HIL_HEADER_BYTES];
    head[0] = EREID_HIL_MAGIC0;
    head[1] = EREID_HIL_MAGIC1;
    head[2] = type;
    head[3] = seq;
    put_u32_le(&head[4], length);
    ereid_uart_write(head, sizeof head);
    tx->crc = ereid_crc32_update(0u, &head[2], sizeof head - 2u);
}

void ereid_hil_send_bytes(ereid_hil_tx_t *tx, const void *data, uint32_t len)
{
    tx->crc = ereid_crc32_update(tx->crc, (const uint8_t *)data, len);
    ereid_uart_write(data, len);
}

void ereid_hil_send_u32(ereid_hil_tx_t *tx, uint32_t value)
{
    uint8_t bytes[4];
    put_u32_le(bytes, value);
    ereid_hil_send_bytes(tx, bytes, sizeof bytes);
}

void ereid_hil_send_u64(ereid_hil_tx_t *tx, uint64_t value)
{
    ereid_hil_send_u32(tx, (uint32_t)value);
    ereid_hil_send_u32(tx, (uint32_t)(value >> 32));
}

void ereid_hil_send_end(ereid_hil_tx_t *tx)
{
    uint8_t bytes[4];
    put_u32_le(bytes, tx->crc);
    ereid_uart_write(bytes, sizeof bytes);
}

void ereid_hil_send_error(uint8_t seq, uint16_t code, uint8_t bad_type, const char *message)
{
    ereid_hil_tx_t tx;
    uint8_t fixed[3];
    uint32_t message_len = 0;
    while (message[message_len] != '\0') {
        message_len++;
    }
    fixed[0] = (uint8_t)code;
    fixed[1] = (uint8_t)(code >> 8);
    fixed[2] = bad_type;
    ereid_hil_send_begin(&tx, EREID_HIL_ERROR, seq, (uint32_t)sizeof fixed + message_len);
    ereid_hil_send_bytes(&tx, fixed, sizeof fixed);
    ereid_hil_send_bytes(&tx, message, message_len);
    ereid_hil_send_end(&tx);
}
