/* stm32h743: facts firmware/runtime/ereid_board.c needs.
 * STM32H743 (RM0433 memory map): flash 2 MiB @0x08000000, DTCM 128 KiB @0x20000000, AXI SRAM 512 KiB @0x24000000. */
#ifndef EREID_BOARD_CONFIG_H
#define EREID_BOARD_CONFIG_H

#include <stdint.h>

#define EREID_BOARD_CORE "cortex-m7"
#define EREID_CORE_CLOCK_HZ 64000000u  /* HSI after reset (RM0433 8.5.2); no PLL set-up */
#define EREID_UART_STM32 1
#define EREID_UART_BASE 0x40004800u    /* USART3: ST-LINK VCP on NUCLEO-H743ZI (PD8/PD9) */
#define EREID_UART_CLOCK_HZ 64000000u  /* rcc_pclk1 = HSI at reset */
#define EREID_UART_BAUD 115200u
#define EREID_CYCLES_DWT 1

/* USART3 clock and PD8 (TX) / PD9 (RX) as alternate function 7. */
static inline void ereid_board_pinmux(void)
{
    volatile uint32_t *rcc_ahb4enr = (volatile uint32_t *)0x580244E0u;
    volatile uint32_t *rcc_apb1lenr = (volatile uint32_t *)0x580244E8u;
    volatile uint32_t *gpiod_moder = (volatile uint32_t *)0x58020C00u;
    volatile uint32_t *gpiod_afrh = (volatile uint32_t *)0x58020C24u;
    *rcc_ahb4enr |= (1u << 3);    /* GPIODEN */
    *rcc_apb1lenr |= (1u << 18);  /* USART3EN */
    (void)*rcc_apb1lenr;          /* read back: the clock is on before first access */
    *gpiod_moder = (*gpiod_moder & ~(0xFu << 16)) | (0xAu << 16);
    *gpiod_afrh = (*gpiod_afrh & ~0xFFu) | 0x77u;
}

#endif
