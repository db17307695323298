/* Board HAL for every Cortex-M board: console UART + instruction/cycle counter.
 * The per-board facts (UART kind and address, clock, counter) come from
 * boards/<name>/ereid_board_config.h. */
#include "ereid_board.h"
#include "ereid_board_config.h"

#define REG32(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

/* ---- System control space (same address on every Cortex-M) ------------- */
#define SYST_CSR   REG32(0xE000E010u)
#define SYST_RVR   REG32(0xE000E014u)
#define SYST_CVR   REG32(0xE000E018u)
#define SCB_ICSR   REG32(0xE000ED04u)
#define SCB_DEMCR  REG32(0xE000EDFCu)
#define DWT_CTRL   REG32(0xE0001000u)
#define DWT_CYCCNT REG32(0xE0001004u)
#define DWT_LAR    REG32(0xE0001FB0u)

#define SYST_CSR_ENABLE    (1u << 0)
#define SYST_CSR_TICKINT   (1u << 1)
#define SYST_CSR_CLKSOURCE (1u << 2)   /* 1 = core clock; QEMU's icount clock */
#define SCB_ICSR_PENDSTSET (1u << 26)
#define SYSTICK_RELOAD     0x00FFFFFFu /* full 24-bit range: one wrap = 2^24 ticks */

/* ---- UART drivers ------------------------------------------------------- */
#if defined(EREID_UART_CMSDK)
/* ARM CMSDK APB UART (MPS2/MPS3 FPGA images, QEMU cmsdk-apb-uart). */
#define UART_DATA    REG32(EREID_UART_BASE + 0x00u)
#define UART_STATE   REG32(EREID_UART_BASE + 0x04u)
#define UART_CTRL    REG32(EREID_UART_BASE + 0x08u)
#define UART_BAUDDIV REG32(EREID_UART_BASE + 0x10u)
#define UART_STATE_TXFULL (1u << 0)
#define UART_STATE_RXFULL (1u << 1)

static void uart_init(void)
{
    /* QEMU ignores the divider but rejects one below 16; real FPGAs need it. */
    UART_BAUDDIV = EREID_CORE_CLOCK_HZ / EREID_UART_BAUD;
    UART_CTRL = 0x3u; /* TX and RX enable */
}

void ereid_uart_putc(uint8_t byte)
{
    while (UART_STATE & UART_STATE_TXFULL) {
    }
    UART_DATA = byte;
}

uint8_t ereid_uart_getc(void)
{
    while (!(UART_STATE & UART_STATE_RXFULL)) {
    }
    return (uint8_t)UART_DATA;
}

#elif defined(EREID_UART_STM32)
/* STM32 F7/H7 USART (same register layout on both families). */
#define USART_CR1 REG32(EREID_UART_BASE + 0x00u)
#define USART_BRR REG32(EREID_UART_BASE + 0x0Cu)
#define USART_ISR REG32(EREID_UART_BASE + 0x1Cu)
#define USART_RDR REG32(EREID_UART_BASE + 0x24u)
#define USART_TDR REG32(EREID_UART_BASE + 0x28u)
#define USART_ICR REG32(EREID_UART_BASE + 0x20u)
#define USART_ISR_ORE  (1u << 3)
#define USART_ISR_RXNE (1u << 5)
#define USART_ISR_TXE  (1u << 7)

static void uart_init(void)
{
    ereid_board_pinmux(); /* clocks + alternate functions, from the board config */
    USART_CR1 = 0;
    USART_BRR = (EREID_UART_CLOCK_HZ + EREID_UART_BAUD / 2u) / EREID_UART_BAUD;
    USART_CR1 = (1u << 3) | (1u << 2) | (1u << 0); /* TE, RE, UE */
}

void ereid_uart_putc(uint8_t byte)
{
    while (!(USART_ISR & USART_ISR_TXE)) {
    }
    USART_TDR = byte;
}

uint8_t ereid_uart_getc(void)
{
    for (;;) {
        uint32_t isr = USART_ISR;
        if (isr & USART_ISR_RXNE) {
            return (uint8_t)USART_RDR;
        }
        if (isr & USART_ISR_ORE) {
            /* An overrun stalls reception until cleared; the frame CRC then fails
             * and the host resends. */
            USART_ICR = USART_ISR_ORE;
        }
    }
}

#elif defined(EREID_UART_NRF52)
/* nRF52 legacy UART peripheral (UART0). */
#define UART_TASKS_STARTRX  REG32(EREID_UART_BASE + 0x000u)
#define UART_TASKS_STARTTX  REG32(EREID_UART_BASE + 0x008u)
#define UART_EVENTS_RXDRDY  REG32(EREID_UART_BASE + 0x108u)
#define UART_EVENTS_TXDRDY  REG32(EREID_UART_BASE + 0x11Cu)
#define UART_ENABLE         REG32(EREID_UART_BASE + 0x500u)
#define UART_PSEL_TXD       REG32(EREID_UART_BASE + 0x50Cu)
#define UART_PSEL_RXD       REG32(EREID_UART_BASE + 0x514u)
#define UART_RXD            REG32(EREID_UART_BASE + 0x518u)
#define UART_TXD            REG32(EREID_UART_BASE + 0x51Cu)
#define UART_BAUDRATE       REG32(EREID_UART_BASE + 0x524u)

static void uart_init(void)
{
    UART_PSEL_TXD = EREID_UART_TX_PIN;
    UART_PSEL_RXD = EREID_UART_RX_PIN;
    UART_BAUDRATE = EREID_UART_BAUDRATE_REG;
    UART_ENABLE = 4u; /* 4 = UART (not UARTE) */
    UART_EVENTS_RXDRDY = 0;
    UART_EVENTS_TXDRDY = 0;
    UART_TASKS_STARTTX = 1u;
    UART_TASKS_STARTRX = 1u;
}

void ereid_uart_putc(uint8_t byte)
{
    UART_TXD = byte;
    while (!UART_EVENTS_TXDRDY) {
    }
    UART_EVENTS_TXDRDY = 0;
}

uint8_t ereid_uart_getc(void)
{
    while (!UART_EVENTS_RXDRDY) {
    }
    UART_EVENTS_RXDRDY = 0;
    return (uint8_t)UART_RXD;
}

#else
#error "ereid_board_config.h must define one of EREID_UART_CMSDK, EREID_UART_STM32, EREID_UART_NRF52"
#endif

void ereid_uart_write(const void *data, uint32_t len)
{
    const uint8_t *p = (const uint8_t *)data;
    while (len--) {
        ereid_uart_putc(*p++);
    }
}

void ereid_uart_read(void *data, uint32_t len)
{
    uint8_t *p = (uint8_t *)data;
    while (len--) {
        *p++ = ereid_uart_getc();
    }
}

/* ---- Counter ------------------------------------------------------------ */
static uint64_t cycles_origin;

#if defined(EREID_CYCLES_DWT)
/* DWT CYCCNT is 32 bits; extend it in software. Correct as long as two reads are
 * less than 2^32 cycles apart (about 9 s at 480 MHz): the HIL firmware reads it
 * at every layer boundary. */
static uint32_t dwt_last;
static uint32_t dwt_high;

static void counter_init(void)
{
    SCB_DEMCR |= (1u << 24); /* TRCENA */
    DWT_LAR = 0xC5ACCE55u;   /* Cortex-M7 locks the DWT until this key is written */
    DWT_CYCCNT = 0;
    DWT_CTRL |= 1u;          /* CYCCNTENA */
    dwt_last = 0;
    dwt_high = 0;
}

uint64_t ereid_cycles_now(void)
{
    uint32_t now = DWT_CYCCNT;
    if (now < dwt_last) {
        dwt_high++;
    }
    dwt_last = now;
    return ((uint64_t)dwt_high << 32) | now;
}

uint32_t ereid_cycles_unit(void) { return EREID_UNIT_CYCLES; }

#else
/* SysTick on the core clock, counting wraps in its interrupt. Under QEMU
 * -icount shift=0 the core clock is virtual: ticks are instructions / N. */
static volatile uint32_t systick_wraps;

void SysTick_Handler(void);
void SysTick_Handler(void)
{
    systick_wraps++;
}

static void counter_init(void)
{
    SYST_CSR = 0;
    SYST_RVR = SYSTICK_RELOAD;
    SYST_CVR = 0; /* any write clears it; it reloads on the next tick */
    systick_wraps = 0;
    SYST_CSR = SYST_CSR_CLKSOURCE | SYST_CSR_TICKINT | SYST_CSR_ENABLE;
}

uint64_t ereid_cycles_now(void)
{
    uint32_t primask;
    uint32_t wraps;
    uint32_t value;
    __asm__ volatile("mrs %0, primask" : "=r"(primask));
    __asm__ volatile("cpsid i" ::: "memory");
    wraps = systick_wraps;
    value = SYST_CVR;
    if (SCB_ICSR & SCB_ICSR_PENDSTSET) {
        /* Wrapped but the interrupt has not run yet: count the wrap here and
         * re-read, since the value may have been sampled just before it. */
        wraps++;
        value = SYST_CVR;
    }
    if (!primask) {
        __asm__ volatile("cpsie i" ::: "memory");
    }
    /* The interrupt fires as the counter reaches 0, so 0 is the first tick of
     * the count already added by that wrap; LOAD follows it. */
    return (uint64_t)wraps * (SYSTICK_RELOAD + 1u) +
           (value ? (SYSTICK_RELOAD + 1u) - value : 0u);
}

uint32_t ereid_cycles_unit(void) { return EREID_UNIT_SYSTICK; }
#endif

void ereid_cycles_start(void)
{
    cycles_origin = ereid_cycles_now();
}

uint64_t ereid_cycles_stop(void)
{
    return ereid_cycles_now() - cycles_origin;
}

const char *ereid_board_core(void)
{
    return EREID_BOARD_CORE;
}

uint32_t ereid_board_clock_hz(void)
{
    return EREID_CORE_CLOCK_HZ;
}

void ereid_board_init(void)
{
    uart_init();
    counter_init();
    ereid_cycles_start();
}
