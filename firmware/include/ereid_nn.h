/*
 * edgereid int8 kernel library: every kernel's prototype.
 *
 * One kernel per file under firmware/kernels/<family>/. Each returns EREID_OK or
 * an error status and never allocates. Outputs are byte-identical to TFLite's
 * reference kernels (BUILTIN_REF) given the parameters TFLite derives; the
 * derivation of each parameter is in firmware/README.md.
 *
 * Build: C99, -ffp-contract=off (ISO C modes already default to it; the float
 * steps of MEAN/RESIZE/QUANTIZE must not be fused into FMAs). On ARMv7E-M and
 * later (__ARM_FEATURE_DSP) conv, depthwise and FC use SMLAD-based inner loops;
 * defining EREID_EMULATE_DSP on any host runs the same loops on emulated
 * instructions (for testing). Outputs never depend on which path runs.
 */
#ifndef EREID_NN_H
#define EREID_NN_H

#include "ereid_nn_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- convolution (CONV_2D), per-channel quantization ------------------- */

/* Generic: any filter size, stride, dilation, padding. filter_dims: n = out_ch,
 * h, w, c = in_ch (OHWI); bias may be NULL; output_dims.c = filter_dims.n. */
ereid_status ereid_convolve_s8(const ereid_context *ctx,
                               const ereid_conv_params *conv_params,
                               const ereid_per_channel_quant_params *quant_params,
                               const ereid_dims *input_dims, const int8_t *input,
                               const ereid_dims *filter_dims, const int8_t *filter,
                               const int32_t *bias,
                               const ereid_dims *output_dims, int8_t *output);

/* 1x1 filter, no padding, dilation 1, any stride. EREID_ARG_ERROR otherwise. */
ereid_status ereid_convolve_1x1_s8(const ereid_context *ctx,
                                   const ereid_conv_params *conv_params,
                                   const ereid_per_channel_quant_params *quant_params,
                                   const ereid_dims *input_dims, const int8_t *input,
                                   const ereid_dims *filter_dims, const int8_t *filter,
                                   const int32_t *bias,
                                   const ereid_dims *output_dims, int8_t *output);

/* 3x3 filter, dilation 1, any stride and padding. EREID_ARG_ERROR otherwise. */
ereid_status ereid_convolve_3x3_s8(const ereid_context *ctx,
                                   const ereid_conv_params *conv_params,
                                   const ereid_per_channel_quant_params *quant_params,
                                   const ereid_dims *input_dims, const int8_t *input,
                                   const ereid_dims *filter_dims, const int8_t *filter,
                                   const int32_t *bias,
                                   const ereid_dims *output_dims, int8_t *output);

/* Picks ereid_convolve_1x1_s8, ereid_convolve_3x3_s8 or ereid_convolve_s8. */
ereid_status ereid_convolve_wrapper_s8(const ereid_context *ctx,
                                       const ereid_conv_params *conv_params,
                                       const ereid_per_channel_quant_params *quant_params,
                                       const ereid_dims *input_dims, const int8_t *input,
                                       const ereid_dims *filter_dims, const int8_t *filter,
                                       const int32_t *bias,
                                       const ereid_dims *output_dims, int8_t *output);

/* Scratch bytes the wrapper needs for these shapes (0 for every current path). */
int32_t ereid_convolve_wrapper_s8_get_buffer_size(const ereid_conv_params *conv_params,
                                                  const ereid_dims *input_dims,
                                                  const ereid_dims *filter_dims,
                                                  const ereid_dims *output_dims);

/* ---- depthwise convolution (DEPTHWISE_CONV_2D), per-channel ------------- */

/* Any ch_mult, filter size, stride, dilation. filter_dims: n = 1, h, w,
 * c = in_ch * ch_mult (1HWO); output_dims.c = input_dims.c * ch_mult. */
ereid_status ereid_depthwise_conv_s8(const ereid_context *ctx,
                                     const ereid_dw_conv_params *dw_conv_params,
                                     const ereid_per_channel_quant_params *quant_params,
                                     const ereid_dims *input_dims, const int8_t *input,
                                     const ereid_dims *filter_dims, const int8_t *filter,
                                     const int32_t *bias,
                                     const ereid_dims *output_dims, int8_t *output);

/* ch_mult 1, 3x3 filter, dilation 1, any stride and padding. */
ereid_status ereid_depthwise_conv_3x3_s8(const ereid_context *ctx,
                                         const ereid_dw_conv_params *dw_conv_params,
                                         const ereid_per_channel_quant_params *quant_params,
                                         const ereid_dims *input_dims, const int8_t *input,
                                         const ereid_dims *filter_dims, const int8_t *filter,
                                         const int32_t *bias,
                                         const ereid_dims *output_dims, int8_t *output);

/* Picks ereid_depthwise_conv_3x3_s8 or ereid_depthwise_conv_s8. */
ereid_status ereid_depthwise_conv_wrapper_s8(const ereid_context *ctx,
                                             const ereid_dw_conv_params *dw_conv_params,
                                             const ereid_per_channel_quant_params *quant_params,
                                             const ereid_dims *input_dims, const int8_t *input,
                                             const ereid_dims *filter_dims, const int8_t *filter,
                                             const int32_t *bias,
                                             const ereid_dims *output_dims, int8_t *output);

/* 1x1 depthwise whose rescale is exactly 1.0 (a binarizer's threshold); any other layer goes to
 * ereid_depthwise_conv_wrapper_s8. */
ereid_status ereid_depthwise_conv_1x1_unit_s8(const ereid_context *ctx,
                                              const ereid_dw_conv_params *dw_conv_params,
                                              const ereid_per_channel_quant_params *quant_params,
                                              const ereid_dims *input_dims, const int8_t *input,
                                              const ereid_dims *filter_dims, const int8_t *filter,
                                              const int32_t *bias,
                                              const ereid_dims *output_dims, int8_t *output);

/* ---- fully connected ---------------------------------------------------- */

/* input_dims: n = batches, h*w*c = accumulation depth; filter_dims: n = out
 * depth, c = accumulation depth (h = w = 1); output_dims: n = batches,
 * c = out depth (h = w = 1). bias may be NULL. Per-tensor weight scale. */
ereid_status ereid_fully_connected_s8(const ereid_context *ctx,
                                      const ereid_fc_params *fc_params,
                                      const ereid_per_tensor_quant_params *quant_params,
                                      const ereid_dims *input_dims, const int8_t *input,
                                      const ereid_dims *filter_dims, const int8_t *filter,
                                      const int32_t *bias,
                                      const ereid_dims *output_dims, int8_t *output);

/* Same, one multiplier/shift per output unit (per-channel weight scales). */
ereid_status ereid_fully_connected_per_channel_s8(const ereid_context *ctx,
                                                  const ereid_fc_params *fc_params,
                                                  const ereid_per_channel_quant_params *quant_params,
                                                  const ereid_dims *input_dims, const int8_t *input,
                                                  const ereid_dims *filter_dims, const int8_t *filter,
                                                  const int32_t *bias,
                                                  const ereid_dims *output_dims, int8_t *output);

/* FULLY_CONNECTED as LiteRT's BUILTIN_REF computes it: the accumulator is rescaled in
 * double and rounded once, half away from zero (ereid_fc_rescale_params). This is the
 * kernel generated firmware calls; the two above keep the fixed-point
 * MultiplyByQuantizedMultiplier requantization of TFLM / CMSIS-NN. */
ereid_status ereid_fully_connected_rescale_s8(const ereid_context *ctx,
                                              const ereid_fc_params *fc_params,
                                              const ereid_fc_rescale_params *rescale,
                                              const ereid_dims *input_dims, const int8_t *input,
                                              const ereid_dims *filter_dims, const int8_t *filter,
                                              const int32_t *bias,
                                              const ereid_dims *output_dims, int8_t *output);

/* The same bytes without double arithmetic (each double scale given as its integer
 * mantissa and exponent, ereid_fc_int_rescale_params; the product's rounding reproduced
 * in 64-bit integers): what generated firmware calls. filter_offset and input_offset
 * in [-255, 255]. */
ereid_status ereid_fully_connected_rescale_int_s8(const ereid_context *ctx,
                                                  const ereid_fc_params *fc_params,
                                                  const ereid_fc_int_rescale_params *rescale,
                                                  const ereid_dims *input_dims, const int8_t *input,
                                                  const ereid_dims *filter_dims, const int8_t *filter,
                                                  const int32_t *bias,
                                                  const ereid_dims *output_dims, int8_t *output);

/* ---- elementwise (4-D broadcast: a dimension of 1 repeats) -------------- */

ereid_status ereid_add_s8(const ereid_add_params *params,
                          const ereid_dims *input1_dims, const int8_t *input1,
                          const ereid_dims *input2_dims, const int8_t *input2,
                          const ereid_dims *output_dims, int8_t *output);

/* ADD entry point: ereid_add_elementwise_s8 for same-shape inputs, else ereid_add_s8. */
ereid_status ereid_add_wrapper_s8(const ereid_add_params *params,
                                  const ereid_dims *input1_dims, const int8_t *input1,
                                  const ereid_dims *input2_dims, const int8_t *input2,
                                  const ereid_dims *output_dims, int8_t *output);

ereid_status ereid_add_elementwise_s8(const ereid_add_params *params,
                                      const ereid_dims *input1_dims, const int8_t *input1,
                                      const ereid_dims *input2_dims, const int8_t *input2,
                                      const ereid_dims *output_dims, int8_t *output);

ereid_status ereid_mul_s8(const ereid_mul_params *params,
                          const ereid_dims *input1_dims, const int8_t *input1,
                          const ereid_dims *input2_dims, const int8_t *input2,
                          const ereid_dims *output_dims, int8_t *output);

/* ---- pooling (filter_dims: h, w used) ----------------------------------- */

ereid_status ereid_max_pool_s8(const ereid_context *ctx,
                               const ereid_pool_params *pool_params,
                               const ereid_dims *input_dims, const int8_t *input,
                               const ereid_dims *filter_dims,
                               const ereid_dims *output_dims, int8_t *output);

ereid_status ereid_avg_pool_s8(const ereid_context *ctx,
                               const ereid_pool_params *pool_params,
                               const ereid_dims *input_dims, const int8_t *input,
                               const ereid_dims *filter_dims,
                               const ereid_dims *output_dims, int8_t *output);

/* ---- reductions --------------------------------------------------------- */

/* output_dims = input_dims with every reduced dimension set to 1. */
ereid_status ereid_mean_s8(const ereid_mean_params *params,
                           const ereid_dims *input_dims, const int8_t *input,
                           const ereid_dims *output_dims, int8_t *output);

/* ---- data movement ------------------------------------------------------ */

ereid_status ereid_pad_s8(const ereid_pad_params *params,
                          const ereid_dims *input_dims, const int8_t *input,
                          const ereid_dims *output_dims, int8_t *output);

/* Concatenate num_inputs 4-D tensors along axis (0..3 of NHWC). All inputs
 * share the output's scale and zero point (TFLite requires it for int8). */
ereid_status ereid_concatenation_s8(const int8_t *const *inputs,
                                    const ereid_dims *input_dims,
                                    int32_t num_inputs, int32_t axis,
                                    const ereid_dims *output_dims, int8_t *output);

/* RESHAPE: the bytes do not change. Copies (memmove) unless input == output. */
ereid_status ereid_reshape_s8(const int8_t *input, int8_t *output, int32_t size);

ereid_status ereid_resize_nearest_s8(const ereid_resize_params *params,
                                     const ereid_dims *input_dims, const int8_t *input,
                                     const ereid_dims *output_dims, int8_t *output);

/* ---- normalisation ------------------------------------------------------ */

/* Softmax over the last axis of num_rows x row_size. */
ereid_status ereid_softmax_s8(const ereid_softmax_params *params,
                              int32_t num_rows, int32_t row_size,
                              const int8_t *input, int8_t *output);

/* L2 normalisation over the last axis of outer_size x depth. */
ereid_status ereid_l2_normalization_s8(const ereid_l2norm_params *params,
                                       int32_t outer_size, int32_t depth,
                                       const int8_t *input, int8_t *output);

/* ---- (de)quantization at the graph edges -------------------------------- */

ereid_status ereid_quantize_f32_s8(const ereid_affine_quant_params *params,
                                   int32_t size, const float *input, int8_t *output);

ereid_status ereid_dequantize_s8_f32(const ereid_affine_quant_params *params,
                                     int32_t size, const int8_t *input, float *output);

/* ---- binary (1-bit) layers: Larq Compute Engine's ops ------------------- */
/* Bitpacked tensors: ereid_nn_types.h. Outputs equal Larq Compute Engine's interpreter
 * with its reference binary kernels (LCE 0.16), byte for byte. */

/* LceQuantize float -> bitpacked: bit = (x < 0) (+0, -0 and NaN give bit 0, i.e. +1).
 * rows x channels values in, rows x ceil(channels / 32) words out; input == output allowed. */
ereid_status ereid_bitpack_f32_b1(int32_t rows, int32_t channels, const float *input, int32_t *output);

/* LceQuantize int8 -> bitpacked: bit = (q < zero_point). */
ereid_status ereid_bitpack_s8_b1(int32_t rows, int32_t channels, int32_t zero_point, const int8_t *input,
                                 int32_t *output);

/* LceDequantize bitpacked -> float: bit 0 -> +1.0f, bit 1 -> -1.0f. */
ereid_status ereid_unpack_b1_f32(int32_t rows, int32_t channels, const int32_t *input, float *output);

/* LceDequantize bitpacked -> int8: bit 0 -> plus_value, bit 1 -> minus_value. */
ereid_status ereid_unpack_b1_s8(int32_t rows, int32_t channels, int32_t plus_value, int32_t minus_value,
                                const int32_t *input, int8_t *output);

/* LceBconv2d, any geometry (ereid_bconv_params). input_dims.c = words per input pixel
 * (ceil(channels_in / 32)); filter_dims: n = output channels, h, w, c = words per group
 * (OHWI, packed along I); output_dims.c = output channels. output: float, int8 or
 * bitpacked words (params->output_type); transform: one per output channel (float /
 * int8 output, else NULL); threshold: one per output channel (bitpacked, else NULL), each
 * within [-1, K] (a threshold below or above says the same for a in [0, K]: clamp it). */
ereid_status ereid_bconv2d_b1(const ereid_context *ctx, const ereid_bconv_params *params,
                              const ereid_bconv_transform *transform, const int32_t *threshold,
                              const ereid_dims *input_dims, const int32_t *input,
                              const ereid_dims *filter_dims, const int32_t *filter,
                              const ereid_dims *output_dims, void *output);

/* 1x1 filter, groups 1, no padding, any stride. EREID_ARG_ERROR otherwise. */
ereid_status ereid_bconv2d_1x1_b1(const ereid_context *ctx, const ereid_bconv_params *params,
                                  const ereid_bconv_transform *transform, const int32_t *threshold,
                                  const ereid_dims *input_dims, const int32_t *input,
                                  const ereid_dims *filter_dims, const int32_t *filter,
                                  const ereid_dims *output_dims, void *output);

/* 3x3 filter, dilation 1, groups 1, any stride / padding. EREID_ARG_ERROR otherwise. */
ereid_status ereid_bconv2d_3x3_b1(const ereid_context *ctx, const ereid_bconv_params *params,
                                  const ereid_bconv_transform *transform, const int32_t *threshold,
                                  const ereid_dims *input_dims, const int32_t *input,
                                  const ereid_dims *filter_dims, const int32_t *filter,
                                  const ereid_dims *output_dims, void *output);

/* Picks ereid_bconv2d_1x1_b1, ereid_bconv2d_3x3_b1 or ereid_bconv2d_b1. */
ereid_status ereid_bconv2d_wrapper_b1(const ereid_context *ctx, const ereid_bconv_params *params,
                                      const ereid_bconv_transform *transform, const int32_t *threshold,
                                      const ereid_dims *input_dims, const int32_t *input,
                                      const ereid_dims *filter_dims, const int32_t *filter,
                                      const ereid_dims *output_dims, void *output);

/* Scratch bytes the wrapper needs for these shapes (0: every path works in place). */
int32_t ereid_bconv2d_wrapper_b1_get_buffer_size(const ereid_bconv_params *params,
                                                 const ereid_dims *input_dims,
                                                 const ereid_dims *filter_dims,
                                                 const ereid_dims *output_dims);

/* LceBMaxPool2d: input and output bitpacked (dims .c = words per pixel, equal);
 * filter_dims: h, w used. */
ereid_status ereid_bmaxpool2d_b1(const ereid_bmaxpool_params *params,
                                 const ereid_dims *input_dims, const int32_t *input,
                                 const ereid_dims *filter_dims,
                                 const ereid_dims *output_dims, int32_t *output);

/* ---- coverage ops: TRANSPOSE, int8 RELU family and PRELU, float32 ops ---- */

/* TRANSPOSE int8: output_dims[i] must equal input_dims[perm[i]]. */
ereid_status ereid_transpose_s8(const ereid_transpose_params *params,
                                const ereid_dims *input_dims, const int8_t *input,
                                const ereid_dims *output_dims, int8_t *output);

/* RELU / RELU6 / RELU_N1_TO_1 int8 over `size` values (rescaled, then clamped). */
ereid_status ereid_relu_s8(const ereid_relu_params *params,
                           int32_t size, const int8_t *input, int8_t *output);

/* PRELU int8; input and alpha broadcast to output_dims (4-D). */
ereid_status ereid_prelu_s8(const ereid_prelu_params *params,
                            const ereid_dims *input_dims, const int8_t *input,
                            const ereid_dims *alpha_dims, const int8_t *alpha,
                            const ereid_dims *output_dims, int8_t *output);

/* PRELU entry point: ereid_prelu_channel_s8 for one alpha per channel, else ereid_prelu_s8. */
ereid_status ereid_prelu_wrapper_s8(const ereid_prelu_params *params,
                                    const ereid_dims *input_dims, const int8_t *input,
                                    const ereid_dims *alpha_dims, const int8_t *alpha,
                                    const ereid_dims *output_dims, int8_t *output);

ereid_status ereid_prelu_channel_s8(const ereid_prelu_params *params,
                                    const ereid_dims *input_dims, const int8_t *input,
                                    const ereid_dims *alpha_dims, const int8_t *alpha,
                                    const ereid_dims *output_dims, int8_t *output);

/* RELU / RELU6 / RELU_N1_TO_1 float32: the clamp of ereid_float_clamp_params. */
ereid_status ereid_relu_f32(const ereid_float_clamp_params *params,
                            int32_t size, const float *input, float *output);

/* ADD / MUL float32 with 4-D broadcasting, then the fused activation's clamp. */
ereid_status ereid_add_f32(const ereid_float_clamp_params *params,
                           const ereid_dims *input1_dims, const float *input1,
                           const ereid_dims *input2_dims, const float *input2,
                           const ereid_dims *output_dims, float *output);

ereid_status ereid_mul_f32(const ereid_float_clamp_params *params,
                           const ereid_dims *input1_dims, const float *input1,
                           const ereid_dims *input2_dims, const float *input2,
                           const ereid_dims *output_dims, float *output);

/* L2_NORMALIZATION float32 over the last axis of outer_size x depth
 * (reference_ops::L2Normalization: sequential float sum of squares, sqrtf, max with 1e-6f, divide). */
ereid_status ereid_l2_normalization_f32(int32_t outer_size, int32_t depth,
                                        const float *input, float *output);

/* ---- int4 weights (_s4): int8 activations, packed int4 filters ---------------------
 * Same parameters, dims and results as the _s8 kernel of the same name, with the filter
 * packed two per byte (element 2i in the low nibble of byte i, over the flat tensor, as
 * TFLite's INT4); filter_dims give the element counts. Weights are symmetric; the input
 * offset must lie in [-255, 255]. No scratch: nibbles are unpacked in the inner loops. */

ereid_status ereid_convolve_s4(const ereid_context *ctx, const ereid_conv_params *conv_params,
                               const ereid_per_channel_quant_params *quant_params,
                               const ereid_dims *input_dims, const int8_t *input,
                               const ereid_dims *filter_dims, const int8_t *filter, const int32_t *bias,
                               const ereid_dims *output_dims, int8_t *output);

/* 1x1 filter, no padding (EREID_CONV_1X1_APPLIES). */
ereid_status ereid_convolve_1x1_s4(const ereid_context *ctx, const ereid_conv_params *conv_params,
                                   const ereid_per_channel_quant_params *quant_params,
                                   const ereid_dims *input_dims, const int8_t *input,
                                   const ereid_dims *filter_dims, const int8_t *filter, const int32_t *bias,
                                   const ereid_dims *output_dims, int8_t *output);

/* 3x3 filter, dilation 1 (EREID_CONV_3X3_APPLIES). */
ereid_status ereid_convolve_3x3_s4(const ereid_context *ctx, const ereid_conv_params *conv_params,
                                   const ereid_per_channel_quant_params *quant_params,
                                   const ereid_dims *input_dims, const int8_t *input,
                                   const ereid_dims *filter_dims, const int8_t *filter, const int32_t *bias,
                                   const ereid_dims *output_dims, int8_t *output);

/* Picks ereid_convolve_1x1_s4, ereid_convolve_3x3_s4 or ereid_convolve_s4. */
ereid_status ereid_convolve_wrapper_s4(const ereid_context *ctx, const ereid_conv_params *conv_params,
                                       const ereid_per_channel_quant_params *quant_params,
                                       const ereid_dims *input_dims, const int8_t *input,
                                       const ereid_dims *filter_dims, const int8_t *filter, const int32_t *bias,
                                       const ereid_dims *output_dims, int8_t *output);

/* Scratch bytes the s4 wrapper needs for these shapes (0: every path reads in place). */
int32_t ereid_convolve_wrapper_s4_get_buffer_size(const ereid_conv_params *conv_params,
                                                  const ereid_dims *input_dims,
                                                  const ereid_dims *filter_dims,
                                                  const ereid_dims *output_dims);

ereid_status ereid_depthwise_conv_s4(const ereid_context *ctx, const ereid_dw_conv_params *dw_conv_params,
                                     const ereid_per_channel_quant_params *quant_params,
                                     const ereid_dims *input_dims, const int8_t *input,
                                     const ereid_dims *filter_dims, const int8_t *filter, const int32_t *bias,
                                     const ereid_dims *output_dims, int8_t *output);

/* ch_mult 1, 3x3 filter, dilation 1 (EREID_DW_CONV_3X3_APPLIES). */
ereid_status ereid_depthwise_conv_3x3_s4(const ereid_context *ctx, const ereid_dw_conv_params *dw_conv_params,
                                         const ereid_per_channel_quant_params *quant_params,
                                         const ereid_dims *input_dims, const int8_t *input,
                                         const ereid_dims *filter_dims, const int8_t *filter, const int32_t *bias,
                                         const ereid_dims *output_dims, int8_t *output);

/* Picks ereid_depthwise_conv_3x3_s4 or ereid_depthwise_conv_s4. */
ereid_status ereid_depthwise_conv_wrapper_s4(const ereid_context *ctx, const ereid_dw_conv_params *dw_conv_params,
                                             const ereid_per_channel_quant_params *quant_params,
                                             const ereid_dims *input_dims, const int8_t *input,
                                             const ereid_dims *filter_dims, const int8_t *filter,
                                             const int32_t *bias, const ereid_dims *output_dims, int8_t *output);

/* FULLY_CONNECTED as ereid_fully_connected_rescale_int_s8 (LiteRT BUILTIN_REF, integer
 * rescale), filter_offset 0. */
ereid_status ereid_fully_connected_s4(const ereid_context *ctx, const ereid_fc_params *fc_params,
                                      const ereid_fc_int_rescale_params *rescale,
                                      const ereid_dims *input_dims, const int8_t *input,
                                      const ereid_dims *filter_dims, const int8_t *filter, const int32_t *bias,
                                      const ereid_dims *output_dims, int8_t *output);

#ifdef __cplusplus
}
#endif

#endif /* EREID_NN_H */
