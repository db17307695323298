/* mps2-an386: vector table and reset handler (cortex-m4).
 * Arm MPS2 FPGA image AN386 (Cortex-M4), as QEMU 7.2 models it (hw/arm/mps2.c). */
#define EREID_NUM_IRQS 32
#define EREID_SECURE_FAULT_VECTOR 0
#include "ereid_startup.h"
