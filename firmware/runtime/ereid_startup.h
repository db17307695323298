/* Cortex-M reset code shared by every boards/<name>/startup.c.
 *
 * Include it from exactly one file per image (the board's startup.c), after
 * defining EREID_NUM_IRQS; it defines Reset_Handler, the weak exception handlers
 * and the vector table (section .vectors, placed first by the board's link.ld).
 * Linker symbols it uses: __StackTop, __data_load__, __data_start__, __data_end__,
 * __bss_start__, __bss_end__. */
#ifndef EREID_STARTUP_H
#define EREID_STARTUP_H

#include <stdint.h>

#ifndef EREID_NUM_IRQS
#error "define EREID_NUM_IRQS (external interrupts of the part) before including ereid_startup.h"
#endif

typedef void (*ereid_handler_t)(void);

typedef struct {
    uint32_t *initial_sp;
    ereid_handler_t handlers[15 + EREID_NUM_IRQS];
} ereid_vector_table_t;

extern uint32_t __StackTop;
extern uint32_t __data_load__;
extern uint32_t __data_start__;
extern uint32_t __data_end__;
extern uint32_t __bss_start__;
extern uint32_t __bss_end__;

int main(void);
void Reset_Handler(void);
extern const ereid_vector_table_t ereid_vector_table;
void Default_Handler(void);

/* A fault or an unexpected interrupt stops here; a debugger shows which from
 * IPSR. The HIL host sees it as a reply timeout. */
void Default_Handler(void)
{
    for (;;) {
    }
}

void NMI_Handler(void) __attribute__((weak, alias("Default_Handler")));
void HardFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void MemManage_Handler(void) __attribute__((weak, alias("Default_Handler")));
void BusFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void UsageFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void SecureFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void SVC_Handler(void) __attribute__((weak, alias("Default_Handler")));
void DebugMon_Handler(void) __attribute__((weak, alias("Default_Handler")));
void PendSV_Handler(void) __attribute__((weak, alias("Default_Handler")));
void SysTick_Handler(void) __attribute__((weak, alias("Default_Handler")));

#define EREID_SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)
#define EREID_SCB_VTOR  (*(volatile uint32_t *)0xE000ED08u)

/* Runs before .data and .bss exist, so it touches only registers and the
 * linker's symbols; the loops stay word loops (no memcpy: libc is not set up). */
__attribute__((noreturn, optimize("no-tree-loop-distribute-patterns")))
void Reset_Handler(void)
{
    /* CP10/CP11 full access before any floating-point (or Helium) instruction;
     * on a core without an FPU these bits read as zero and ignore the write. */
    EREID_SCB_CPACR |= (0xFu << 20);
    /* Parts that boot from an alias (STM32F7 boots at 0x00200000) must take
     * later exceptions from this table too. */
    EREID_SCB_VTOR = (uint32_t)(uintptr_t)&ereid_vector_table;
    __asm__ volatile("dsb\n\tisb" ::: "memory");

    {
        const uint32_t *src = &__data_load__;
        uint32_t *dst = &__data_start__;
        while (dst < &__data_end__) {
            *dst++ = *src++;
        }
    }
    {
        uint32_t *dst = &__bss_start__;
        while (dst < &__bss_end__) {
            *dst++ = 0u;
        }
    }
    (void)main();
    for (;;) {
    }
}

#ifndef EREID_SECURE_FAULT_VECTOR
#define EREID_SECURE_FAULT_VECTOR 0 /* reserved slot on ARMv7-M */
#endif

__attribute__((section(".vectors"), used))
const ereid_vector_table_t ereid_vector_table = {
    &__StackTop,
    {
        Reset_Handler,
        NMI_Handler,
        HardFault_Handler,
        MemManage_Handler,
        BusFault_Handler,
        UsageFault_Handler,
#if EREID_SECURE_FAULT_VECTOR
        SecureFault_Handler,
#else
        0,
#endif
        0, 0, 0,
        SVC_Handler,
        DebugMon_Handler,
        0,
        PendSV_Handler,
        SysTick_Handler,
        /* external interrupts: Default_Handler unless a board fills them */
        [15 ... 15 + EREID_NUM_IRQS - 1] = Default_Handler,
    },
};

#endif
