/* mps2-an500: vector table and reset handler (cortex-m7).
 * Arm MPS2 FPGA image AN500 (Cortex-M7), as QEMU 7.2 models it (hw/arm/mps2.c). */
#define EREID_NUM_IRQS 32
#define EREID_SECURE_FAULT_VECTOR 0
#include "ereid_startup.h"
