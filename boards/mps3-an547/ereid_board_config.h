/* mps3-an547: facts firmware/runtime/ereid_board.c needs.
 * Arm MPS3 FPGA image AN547 (SSE-300, Cortex-M55), as QEMU 7.2 models it (hw/arm/mps2-tz.c, hw/arm/armsse.c). */
#ifndef EREID_BOARD_CONFIG_H
#define EREID_BOARD_CONFIG_H

#include <stdint.h>

#define EREID_BOARD_CORE "cortex-m55"
#define EREID_CORE_CLOCK_HZ 32000000u /* QEMU MPS3 SYSCLK_FRQ */
#define EREID_UART_CMSDK 1
#define EREID_UART_BASE 0x49303000u   /* UART0 behind APB PPC EXP2 (hw/arm/mps2-tz.c an547_ppcs) */
#define EREID_UART_BAUD 115200u
/* No DWT cycle counter in QEMU: SysTick (CLKSOURCE=1) counts the virtual clock. */

#endif
