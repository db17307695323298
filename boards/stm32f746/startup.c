/* stm32f746: vector table and reset handler (cortex-m7).
 * STM32F746 (RM0385 memory map): flash 1 MiB @0x08000000, SRAM 320 KiB @0x20000000 (DTCM 64K + SRAM1 240K + SRAM2 16K). */
#define EREID_NUM_IRQS 98
#define EREID_SECURE_FAULT_VECTOR 0
#include "ereid_startup.h"
