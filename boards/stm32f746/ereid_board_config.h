/* stm32f746: facts firmware/runtime/ereid_board.c needs.
 * STM32F746 (RM0385 memory map): flash 1 MiB @0x08000000, SRAM 320 KiB @0x20000000 (DTCM 64K + SRAM1 240K + SRAM2 16K). */
#ifndef EREID_BOARD_CONFIG_H
#define EREID_BOARD_CONFIG_H

#include <stdint.h>

#define EREID_BOARD_CORE "cortex-m7"
#define EREID_CORE_CLOCK_HZ 16000000u  /* HSI after reset (RM0385 5.2); no PLL set-up */
#define EREID_UART_STM32 1
#define EREID_UART_BASE 0x40004800u    /* USART3: ST-LINK VCP on NUCLEO-F746ZG (PD8/PD9) */
#define EREID_UART_CLOCK_HZ 16000000u  /* PCLK1 = HSI at reset */
#define EREID_UART_BAUD 115200u
#define EREID_CYCLES_DWT 1

/* USART3 clock and PD8 (TX) / PD9 (RX) as alternate function 7. */
static inline void ereid_board_pinmux(void)
{
    volatile uint32_t *rcc_ahb1enr = (volatile uint32_t *)0x40023830u;
    volatile uint32_t *rcc_apb1enr = (volatile uint32_t *)0x40023840u;
    volatile uint32_t *gpiod_moder = (volatile uint32_t *)0x40020C00u;
    volatile uint32_t *gpiod_afrh = (volatile uint32_t *)0x40020C24u;
    *rcc_ahb1enr |= (1u << 3);   /* GPIODEN */
    *rcc_apb1enr |= (1u << 18);  /* USART3EN */
    (void)*rcc_apb1enr;          /* read back: the clock is on before first access */
    *gpiod_moder = (*gpiod_moder & ~(0xFu << 16)) | (0xAu << 16);
    *gpiod_afrh = (*gpiod_afrh & ~0xFFu) | 0x77u;
}

#endif
