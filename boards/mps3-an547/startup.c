/* mps3-an547: vector table and reset handler (cortex-m55).
 * Arm MPS3 FPGA image AN547 (SSE-300, Cortex-M55), as QEMU 7.2 models it (hw/arm/mps2-tz.c, hw/arm/armsse.c). */
#define EREID_NUM_IRQS 96
#define EREID_SECURE_FAULT_VECTOR 1
#include "ereid_startup.h"
