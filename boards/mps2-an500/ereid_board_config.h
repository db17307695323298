/* mps2-an500: facts firmware/runtime/ereid_board.c needs.
 * Arm MPS2 FPGA image AN500 (Cortex-M7), as QEMU 7.2 models it (hw/arm/mps2.c). */
#ifndef EREID_BOARD_CONFIG_H
#define EREID_BOARD_CONFIG_H

#include <stdint.h>

#define EREID_BOARD_CORE "cortex-m7"
#define EREID_CORE_CLOCK_HZ 25000000u /* QEMU SYSCLK_FRQ for MPS2 */
#define EREID_UART_CMSDK 1
#define EREID_UART_BASE 0x40004000u   /* UART0, QEMU serial 0 (hw/arm/mps2.c) */
#define EREID_UART_BAUD 115200u
/* No DWT cycle counter in QEMU: SysTick (CLKSOURCE=1) counts the virtual clock. */

#endif
