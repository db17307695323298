/* nrf52840: vector table and reset handler (cortex-m4).
 * nRF52840 (Product Specification v1.7 memory map): flash 1 MiB @0x0, RAM 256 KiB @0x20000000. */
#define EREID_NUM_IRQS 48
#define EREID_SECURE_FAULT_VECTOR 0
#include "ereid_startup.h"
