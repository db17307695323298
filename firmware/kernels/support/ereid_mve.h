/*
 * Helium (M-profile Vector Extension) switch of the int8 depthwise and fully-connected
 * kernels. EREID_USE_MVE is 1 on a core with integer MVE (Cortex-M55: __ARM_FEATURE_MVE
 * bit 0) unless EREID_NO_MVE (drops only the Helium paths, to compare them with the DSP
 * ones on the same core) or EREID_NO_DSP (the portable loops) is defined. The kernels use
 * the ACLE intrinsics of arm_mve.h; a host cannot emulate them, so the Helium paths are
 * checked against LiteRT BUILTIN_REF in QEMU mps3-an547 (tools/check_firmware_qemu.py).
 */
#ifndef EREID_MVE_H
#define EREID_MVE_H

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1) && !defined(EREID_NO_MVE) && !defined(EREID_NO_DSP)
#define EREID_USE_MVE 1
#include <arm_mve.h>
#else
#define EREID_USE_MVE 0
#endif

#endif /* EREID_MVE_H */
