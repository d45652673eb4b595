// Sankshep quantized linear layers: y = x · Wᵀ + b on the CPU with INT8, INT4 or FP16 weights.
//
// Shapes follow PyTorch's Linear: x is (M, K) float activations (M = batch × tokens), W is (N, K)
// (out × in), b is (N) or NULL, y is (M, N). All buffers are row-major and owned by the caller; no
// function allocates or keeps a pointer after it returns. Sizes of every buffer a function fills are
// given by the `*_bytes` / `sk_int8_padded_k` helpers below.
//
// Storage vs run-time layout. Each method has a plain *storage* layout (what a checkpoint holds:
// row-major int8 + scales, packed int4 blocks, row-major half) and, where it pays, a *packed* run-time
// layout made once at load time by `sk_pack_*`. The `_reference` kernels read the storage layout and
// state the mathematics in the simplest loop; the fast kernels must agree with them (exactly for the
// integer products, up to float summation order for the scaling and FP16).
//
// Dispatch: the fast kernels use AVX2 + FMA + F16C when the CPU has them (checked once at run time)
// and a portable C path otherwise; setting SANKSHEP_NO_SIMD=1 in the environment forces the portable
// path. Large products are split over output channels across `sk_get_threads()` threads.
#ifndef SANKSHEP_QUANT_KERNELS_H
#define SANKSHEP_QUANT_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/// True when the AVX2 + FMA + F16C kernels are in use on this machine.
bool sk_quant_uses_avx2(void);

/// Tests and benchmarks: false forces the portable kernels; true goes back to detecting the CPU
/// (and honouring SANKSHEP_NO_SIMD). Not to be called while kernels run on other threads.
void sk_quant_set_simd(bool enabled);

// ================================================================ FP16 conversion

/// float -> IEEE half, round to nearest even (overflow -> ±inf), as F16C's `vcvtps2ph` does.
void sk_float_to_half(const float *x, uint16_t *h, size_t n);
/// IEEE half -> float (exact).
void sk_half_to_float(const uint16_t *h, float *x, size_t n);

// ================================================================ INT8 (per-channel weights)
//
// Weights: symmetric per output channel, scale_n = max|W[n, :]| / 127, q = round(W / scale_n) in
// [-127, 127] (never -128: the AVX2 kernel relies on it, see int8.c). A row of zeros gets scale 0.
// Activations: symmetric per row, scale_m = max|x[m, :]| / 127 (dynamic) or a fixed calibrated scale
// (static), q in [-127, 127]; the kernel also accepts -128 in activations.
// y[m, n] = scale_m · scale_n · Σ_k xq[m, k] · Wq[n, k] + b[n], the sum exact in int32
// (|Σ| ≤ K · 128 · 127 fits int32 for K < 132,000).

/// Row stride of quantized activations: K rounded up to 32. Bytes past K in each row are zero.
int sk_int8_padded_k(int K);

/// W (N, K) -> Wq (N, K) int8 and scales (N).
void sk_quantize_weights_int8_per_channel(const float *W, int N, int K, int8_t *Wq, float *scales);

/// Wq (N, K) and scales (N) -> W (N, K) float.
void sk_dequantize_weights_int8(const int8_t *Wq, const float *scales, int N, int K, float *W);

/// Bytes of the packed run-time layout of an (N, K) INT8 weight (without the N float scales).
size_t sk_int8_packed_bytes(int N, int K);

/// Bytes one quantized INT8 linear layer uses at run time: packed weights plus scales.
size_t sk_int8_weights_bytes(int N, int K);

/// Wq (N, K) -> packed (sk_int8_packed_bytes(N, K) bytes): panels of 2 output channels, each
/// panel K/32 chunks of 2 × 32 bytes, K and N padded with zeros.
void sk_pack_weights_int8(const int8_t *Wq, int N, int K, int8_t *packed);

/// x (M, K) -> xq (M, sk_int8_padded_k(K)) and row_scales (M).
/// static_scale > 0: every row uses that scale (static quantization; values beyond ±127·scale clamp).
/// static_scale <= 0: each row gets its own scale max|x[m, :]| / 127 (dynamic quantization).
void sk_quantize_rows_int8(const float *x, int M, int K, float static_scale, int8_t *xq, float *row_scales);

/// y (M, N) = dequantized (xq · Wqᵀ) + bias. xq (M, sk_int8_padded_k(K)), row_scales (M),
/// packed from sk_pack_weights_int8, weight_scales (N), bias (N) or NULL.
void sk_linear_int8(const int8_t *xq, const float *row_scales, int M, int K,
                    const int8_t *packed, const float *weight_scales, const float *bias, int N, float *y);

/// The same product from the storage layout, one dot product at a time. xq has row stride ldx.
void sk_linear_int8_reference(const int8_t *xq, int ldx, const float *row_scales, int M, int K,
                              const int8_t *Wq, const float *weight_scales, const float *bias, int N, float *y);

// ================================================================ INT4 (group-wise weights)
//
// Each row of W is cut into groups of G = 32, 64 or 128 consecutive inputs (K must be a multiple of
// G). A group is stored as a block: its scale d as IEEE half, then G/2 bytes of 4-bit codes. Within
// every 32 inputs of the group, byte j holds input j in its low nibble and input j + 16 in its high
// nibble (ggml's `block_q4_0` order). Code c in [0, 15] means the weight (c - 8) · d. The scale is
// chosen as ggml does: d = w* / -8, where w* is the group's weight of largest magnitude, so w* is
// exact and the rest round into [-8, 7].
// Activations are quantized per row and per group of the same G to int8 (symmetric, [-127, 127]),
// and each block's integer dot product is scaled by d_w · d_x; W is never expanded to float.

/// A block for G = 32 (the layout of every 32-input part of larger groups too).
typedef struct {
    uint16_t d;          // scale, IEEE half
    uint8_t qs[16];      // 32 codes, two per byte
} sk_block_q4_32;

typedef struct { uint16_t d; uint8_t qs[32]; } sk_block_q4_64;
typedef struct { uint16_t d; uint8_t qs[64]; } sk_block_q4_128;

/// True when G is a supported group size and K a positive multiple of it.
bool sk_int4_shape_ok(int K, int group);

/// Bytes of an (N, K) INT4 weight with group size G: N · K/G blocks of 2 + G/2 bytes.
size_t sk_int4_weights_bytes(int N, int K, int group);

/// W (N, K) -> blocks (sk_int4_weights_bytes bytes), row by row, group by group.
void sk_quantize_weights_int4(const float *W, int N, int K, int group, void *blocks);

/// blocks -> W (N, K) float.
void sk_dequantize_weights_int4(const void *blocks, int N, int K, int group, float *W);

/// x (M, K) -> xq (M, K) int8 and scales (M, K/G): scale = max|x over the group| / 127.
void sk_quantize_rows_int8_grouped(const float *x, int M, int K, int group, int8_t *xq, float *scales);

/// y (M, N) = Σ over groups of d_x · d_w · (xq · codes - 8) + bias. xq (M, K), x_scales (M, K/G),
/// blocks from sk_quantize_weights_int4, bias (N) or NULL. Writes nothing when
/// !sk_int4_shape_ok(K, group): callers validate shapes when they build the layer.
void sk_linear_int4(const int8_t *xq, const float *x_scales, int M, int K, int group,
                    const void *blocks, const float *bias, int N, float *y);

void sk_linear_int4_reference(const int8_t *xq, const float *x_scales, int M, int K, int group,
                              const void *blocks, const float *bias, int N, float *y);

// ================================================================ FP16 weights
//
// W is stored as IEEE half (N, K). The fast kernel reads a packed copy: panels of 16 output channels,
// each panel K rows of 16 halves (a transposed strip, N padded with zero channels), converts 16
// weights with F16C per step and reuses them across up to 6 rows of x with FMAs in float.

/// Bytes of the packed run-time layout of an (N, K) FP16 weight.
size_t sk_fp16_packed_bytes(int N, int K);

/// Wh (N, K) half -> packed (sk_fp16_packed_bytes(N, K) bytes).
void sk_pack_weights_fp16(const uint16_t *Wh, int N, int K, uint16_t *packed);

/// y (M, N) = x (M, K) · Wᵀ + bias with W from sk_pack_weights_fp16.
void sk_linear_fp16(const float *x, int M, int K, const uint16_t *packed, const float *bias, int N, float *y);

/// The same from the storage layout Wh (N, K), accumulating in double.
void sk_linear_fp16_reference(const float *x, int M, int K, const uint16_t *Wh, const float *bias, int N, float *y);

#ifdef __cplusplus
}
#endif

#endif // SANKSHEP_QUANT_KERNELS_H
