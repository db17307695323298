/* stm32h743: vector table and reset handler (cortex-m7).
 * STM32H743 (RM0433 memory map): flash 2 MiB @0x08000000, DTCM 128 KiB @0x20000000, AXI SRAM 512 KiB @0x24000000. */
#define EREID_NUM_IRQS 150
#define EREID_SECURE_FAULT_VECTOR 0
#include "ereid_startup.h"
