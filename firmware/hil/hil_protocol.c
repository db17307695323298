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

int ereid_hil_receive(ereid_hil_header_t *header, uint8_t *payload, uint32_t capacity)
{
    uint8_t head[EREID_HIL_HEADER_BYTES - 2u];
    uint8_t crc_bytes[EREID_HIL_CRC_BYTES];
    uint32_t crc;
    uint8_t byte = ereid_uart_getc();

    /* Hunt for the two magic bytes; a stray MAGIC0 may precede the real one. */
    for (;;) {
        if (byte != EREID_HIL_MAGIC0) {
            byte = ereid_uart_getc();
            continue;
        }
        byte = ereid_uart_getc();
        if (byte == EREID_HIL_MAGIC1) {
            break;
        }
    }
    ereid_uart_read(head, sizeof head);
    header->type = head[0];
    header->seq = head[1];
    header->length = read_u32_le(&head[2]);
    if (header->length > capacity) {
        return EREID_HIL_RX_TOO_LONG;
    }
    ereid_uart_read(payload, header->length);
    ereid_uart_read(crc_bytes, sizeof crc_bytes);
    crc = ereid_crc32_update(0u, head, sizeof head);
    crc = ereid_crc32_update(crc, payload, header->length);
    return crc == read_u32_le(crc_bytes) ? EREID_HIL_RX_OK : EREID_HIL_RX_BAD_CRC;
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
