/* Board HAL used by the HIL firmware and by benchmarks: a byte UART and an
 * instruction/cycle counter. Two implementations:
 * - ereid_board.c serves every Cortex-M board; what differs per board lives in
 *   boards/<name>/ereid_board_config.h, found through -Iboards/<name>. No dynamic
 *   allocation, no libc I/O.
 * - host/ereid_board_host.c serves a hosted (POSIX) build, the `host` board: the
 *   "UART" is the process's stdin/stdout as raw bytes, the counter is
 *   clock_gettime(CLOCK_MONOTONIC) in nanoseconds. */
#ifndef EREID_BOARD_H
#define EREID_BOARD_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* UART on, counter on. The FPU is already enabled by the reset handler. */
void ereid_board_init(void);

/* Blocking byte I/O on the board's console UART. Host build: end of input (the
 * host closed the pipe) ends the process with status 0, a failed write with 3. */
void ereid_uart_putc(uint8_t byte);
uint8_t ereid_uart_getc(void);
void ereid_uart_write(const void *data, uint32_t len);
void ereid_uart_read(void *data, uint32_t len);

/* Free-running 64-bit count in the board's counter unit (see ereid_cycles_unit()):
 * SysTick ticks (CLKSOURCE=1) under QEMU, core cycles from DWT CYCCNT on real
 * M4/M7 parts built with EREID_CYCLES_DWT. */
uint64_t ereid_cycles_now(void);
void ereid_cycles_start(void);
uint64_t ereid_cycles_stop(void);   /* units since the last ereid_cycles_start() */

/* What one count means, reported to the host in HELLO. */
enum ereid_counter_unit {
    EREID_UNIT_SYSTICK = 1,   /* SysTick ticks on the core clock; host scales by ticks_per_instruction */
    EREID_UNIT_CYCLES = 2,    /* core clock cycles (DWT CYCCNT) */
    EREID_UNIT_NANOSECONDS = 3 /* wall-clock ns (host build: CLOCK_MONOTONIC) */
};
uint32_t ereid_cycles_unit(void);

/* Core clock in Hz for the HELLO reply; 0 where it is not known (host build). */
uint32_t ereid_board_clock_hz(void);

/* Core name such as "cortex-m4", for the HELLO reply. */
const char *ereid_board_core(void);

#ifdef __cplusplus
}
#endif

#endif
