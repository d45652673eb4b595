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

/// The instruction sets the quantized kernels can run with, each level including the ones below.
/// Every level reads the same packed weights and gives bit-identical outputs.
typedef enum {
    SK_KERNELS_PORTABLE = 0,       // plain C
    SK_KERNELS_AVX2 = 1,           // AVX2 + FMA + F16C: vpmaddubsw / vpmaddwd
    SK_KERNELS_AVX512_VNNI = 2,    // AVX-512 F/BW + VNNI: vpdpbusd on 16 channels (INT8 and INT4)
} sk_kernel_level;

/// The best level this CPU (and OS) supports, capped by SANKSHEP_NO_AVX512=1 (AVX2) or
/// SANKSHEP_NO_SIMD=1 (portable).
int sk_quant_max_kernel_level(void);

/// The level in use: sk_quant_max_kernel_level(), unless sk_quant_set_kernel_level chose a lower one.
int sk_quant_kernel_level(void);

/// Tests and benchmarks: run with `level` (capped at what the CPU supports); -1 goes back to
/// detection and the environment. Not to be called while kernels run on other threads.
void sk_quant_set_kernel_level(int level);

/// "portable", "avx2", "avx512-vnni".
const char *sk_quant_kernel_name(int level);

/// Sets how many threads the quantized kernels' loops use (sk_get_threads()) while leaving OpenBLAS's
/// own count as it was. A plugin library carries its own copy of these kernels but shares the
/// process's OpenBLAS with the host, so it must not change the host's BLAS setting.
void sk_quant_set_threads(int threads);

// ================================================================ FP16 conversion

/// float -> IEEE half, round to nearest even (overflow -> ±inf), as F16C's `vcvtps2ph` does.
void sk_float_to_half(const float *x, uint16_t *h, size_t n);
/// IEEE half -> float (exact).
void sk_half_to_float(const uint16_t *h, float *x, size_t n);

// ================================================================ packed block layouts
//
// The blocks the packed run-time layouts are made of, as C structs whose sizes are checked at compile
// time (as ggml-common.h does), so a plugin that builds or reads packed weights itself sees the same
// bytes the kernels read. A panel is SK_PANEL_CHANNELS output channels; its blocks follow each other
// along K, and panels follow each other along N.

/// Output channels per panel of every packed integer layout: the int32 lanes of one zmm register.
#define SK_PANEL_CHANNELS 16

/// One step of an INT8 panel: 4 consecutive inputs of 16 channels, channel c's 4 bytes at 4c..4c+3
/// (what one int32 lane of vpdpbusd, or of vpmaddubsw + vpmaddwd, sums), every byte stored as w + 128
/// (padding inputs and channels as 128: weight 0). A panel is sk_int8_padded_k(K) / 4 such steps.
typedef struct {
    uint8_t offset_weights[SK_PANEL_CHANNELS][4];   // [channel][input], w + 128
} sk_int8_panel_step;

/// Two steps (8 consecutive inputs 8t..8t+7) of an INT4 panel: byte [c][i] holds channel c's code for
/// input 8t + i in its low nibble and for input 8t + 4 + i in its high nibble, so one load, an and, a
/// shift and an and give both steps' codes. Padding channels hold code 8 (weight 0). A panel is K / 8
/// such pairs; after all panels' codes come the group scales, per panel and group one
/// sk_int4_panel_scales.
typedef struct {
    uint8_t codes[SK_PANEL_CHANNELS][4];            // [channel][input within the step], low | high << 4
} sk_int4_panel_pair;

/// The int8 group scales s of one panel and one group, channel c at [c] (padding channels 0).
typedef struct {
    int8_t scales[SK_PANEL_CHANNELS];
} sk_int4_panel_scales;

#ifdef __cplusplus
static_assert(sizeof(sk_int8_panel_step) == 64, "an INT8 panel step is one 64-byte load");
static_assert(sizeof(sk_int4_panel_pair) == 64, "an INT4 panel pair is one 64-byte load");
static_assert(sizeof(sk_int4_panel_scales) == 16, "an INT4 panel's group scales are 16 bytes");
#else
_Static_assert(sizeof(sk_int8_panel_step) == 64, "an INT8 panel step is one 64-byte load");
_Static_assert(sizeof(sk_int4_panel_pair) == 64, "an INT4 panel pair is one 64-byte load");
_Static_assert(sizeof(sk_int4_panel_scales) == 16, "an INT4 panel's group scales are 16 bytes");
#endif

// ================================================================ INT8 (per-channel weights)
//
// Weights: symmetric per output channel, scale_n = max|W[n, :]| / 127, q = round(W / scale_n) in
// [-127, 127] (never -128: the AVX2 kernel relies on it, see int8.c). A row of zeros gets scale 0.
// Activations: symmetric per row, scale_m = max|x[m, :]| / 127 (dynamic) or a fixed calibrated scale
// (static), q in [-127, 127]; the kernel also accepts -128 in activations.
// y[m, n] = scale_m · scale_n · Σ_k xq[m, k] · Wq[n, k] + b[n], the sum exact in int32
// (|Σ| ≤ K · 128 · 127 fits int32 for K < 132,000; every path gives the same bits).

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

/// Wq (N, K) -> packed (sk_int8_packed_bytes(N, K) bytes): panels of 16 output channels, each
/// panel sk_int8_padded_k(K)/4 sk_int8_panel_step blocks; K and N padded with weight 0 (byte 128).
/// int8.c says why.
void sk_pack_weights_int8(const int8_t *Wq, int N, int K, int8_t *packed);

/// packed -> Wq (N, K): the inverse of sk_pack_weights_int8 (a layer keeps only the packed copy and
/// rebuilds the storage layout when it is saved).
void sk_unpack_weights_int8(const int8_t *packed, int N, int K, int8_t *Wq);

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
// Each row of W is cut into groups of G = 32, 64 or 128 consecutive inputs (K a multiple of G, at most
// 8192). Weight n, k is (u - 8) · s[n, g] · D[n]: a 4-bit code u in [0, 15], a signed integer scale
// s in [-127, 127] per group and a float scale D per output channel. s is chosen from the group's
// ideal scale d_g = w*/-8 (w* the group's weight of largest magnitude, as ggml's q4_0 does) rounded
// away from zero to a multiple of D = max_g |d_g| / 127, so nothing clips; the codes are rounded
// against the stored step. Integer group scales let the kernel sum a whole row in int32 (int4.c).
// Storage layout: codes (N, K/2) bytes, byte i of a row holding input 2i in its low nibble and input
// 2i + 1 in its high nibble; group_scales (N, K/G) int8; channel_scales (N) float.
// Activations are quantized per row exactly as dynamic INT8 (sk_quantize_rows_int8 with static_scale
// 0), plus their sums per group (sk_int4_activation_sums), which remove the codes' offset of 8.

/// True when G is a supported group size and K a positive multiple of it, at most 8192.
bool sk_int4_shape_ok(int K, int group);

/// Groups per row rounded up to 16: the row length of the int16 group sums and packed group scales.
int sk_int4_padded_groups(int K, int group);

/// Bytes of the stored codes of an (N, K) weight: N · K / 2.
size_t sk_int4_codes_bytes(int N, int K);

/// W (N, K) -> codes (sk_int4_codes_bytes), group_scales (N, K/G) and channel_scales (N).
void sk_quantize_weights_int4(const float *W, int N, int K, int group, uint8_t *codes, int8_t *group_scales,
                              float *channel_scales);

/// Storage layout -> W (N, K) float: (u - 8) · s · D.
void sk_dequantize_weights_int4(const uint8_t *codes, const int8_t *group_scales, const float *channel_scales,
                                int N, int K, int group, float *W);

/// Bytes of the packed run-time layout (codes of channel pairs interleaved by nibble, then the group
/// scales as int16 rows of sk_int4_padded_groups, channels padded to even).
size_t sk_int4_packed_bytes(int N, int K, int group);

/// codes and group_scales -> packed (sk_int4_packed_bytes bytes).
void sk_pack_weights_int4(const uint8_t *codes, const int8_t *group_scales, int N, int K, int group, void *packed);

/// packed -> codes and group_scales: the inverse of sk_pack_weights_int4.
void sk_unpack_weights_int4(const void *packed, int N, int K, int group, uint8_t *codes, int8_t *group_scales);

/// xq (M, K) -> sums (M, sk_int4_padded_groups) int16: Σ of xq over each group, zero-padded.
void sk_int4_activation_sums(const int8_t *xq, int M, int K, int group, int16_t *sums);

/// y (M, N) = row_scales[m] · channel_scales[n] · Σ_k s · (u - 8) · xq + bias. xq (M, K) and
/// row_scales (M) from sk_quantize_rows_int8, sums from sk_int4_activation_sums, packed from
/// sk_pack_weights_int4, bias (N) or NULL. Writes nothing when !sk_int4_shape_ok(K, group): callers
/// validate shapes when they build the layer.
void sk_linear_int4(const int8_t *xq, const float *row_scales, const int16_t *sums, int M, int K, int group,
                    const void *packed, const float *channel_scales, const float *bias, int N, float *y);

/// The same product from the storage layout, one output at a time (exactly equal: integer sums).
void sk_linear_int4_reference(const int8_t *xq, const float *row_scales, int M, int K, int group,
                              const uint8_t *codes, const int8_t *group_scales, const float *channel_scales,
                              const float *bias, int N, float *y);

// ================================================================ FP16 weights
//
// W is stored as IEEE half (N, K). The fast kernel reads a packed copy: panels of 16 output channels,
// each panel K rows of 16 halves (a transposed strip, N padded with zero channels), converts 16
// weights with F16C per step and reuses them across up to 6 rows of x with FMAs in float.

/// Bytes of the packed run-time layout of an (N, K) FP16 weight.
size_t sk_fp16_packed_bytes(int N, int K);

/// Wh (N, K) half -> packed (sk_fp16_packed_bytes(N, K) bytes).
void sk_pack_weights_fp16(const uint16_t *Wh, int N, int K, uint16_t *packed);

/// packed -> Wh (N, K): the inverse of sk_pack_weights_fp16.
void sk_unpack_weights_fp16(const uint16_t *packed, int N, int K, uint16_t *Wh);

/// y (M, N) = x (M, K) · Wᵀ + bias with W from sk_pack_weights_fp16.
void sk_linear_fp16(const float *x, int M, int K, const uint16_t *packed, const float *bias, int N, float *y);

/// The same from the storage layout Wh (N, K), accumulating in double.
void sk_linear_fp16_reference(const float *x, int M, int K, const uint16_t *Wh, const float *bias, int N, float *y);

#ifdef __cplusplus
}
#endif

#endif // SANKSHEP_QUANT_KERNELS_H
