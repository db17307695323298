/* nrf52840: facts firmware/runtime/ereid_board.c needs.
 * nRF52840 (Product Specification v1.7 memory map): flash 1 MiB @0x0, RAM 256 KiB @0x20000000. */
#ifndef EREID_BOARD_CONFIG_H
#define EREID_BOARD_CONFIG_H

#include <stdint.h>

#define EREID_BOARD_CORE "cortex-m4"
#define EREID_CORE_CLOCK_HZ 64000000u
#define EREID_UART_NRF52 1
#define EREID_UART_BASE 0x40002000u      /* UART0 */
#define EREID_UART_TX_PIN 6u             /* P0.06: nRF52840-DK VCOM TXD */
#define EREID_UART_RX_PIN 8u             /* P0.08: nRF52840-DK VCOM RXD */
#define EREID_UART_BAUDRATE_REG 0x01D7E000u /* 115200 baud (PS table BAUDRATE) */
#define EREID_UART_BAUD 115200u
#define EREID_CYCLES_DWT 1

#endif
