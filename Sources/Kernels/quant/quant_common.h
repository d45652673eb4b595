// Private helpers shared by the quantized kernels: IEEE half <-> float in plain C (the portable path
// and the reference kernels use these; the fast paths use F16C, which rounds the same way), CPU
// feature checks, and small integer helpers.
#ifndef SANKSHEP_QUANT_COMMON_H
#define SANKSHEP_QUANT_COMMON_H

#include <stdint.h>
#include <string.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include "quant_kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#define SK_X86 1
#include <immintrin.h>
#define SK_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#define SK_TARGET_AVX512_VNNI __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vnni")))
#else
#define SK_X86 0
#endif

#define SK_INLINE static inline __attribute__((always_inline))

/// True when the AVX2 + FMA + F16C paths may run. `SANKSHEP_NO_SIMD=1` forces the portable
/// paths, so they can be exercised on a machine that has AVX2.
bool sk_quant_has_avx2(void);

static inline uint32_t sk_float_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float sk_bits_float(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

/// Half -> float, exact for every half (normals, subnormals, infinities, NaN keeps its payload).
static inline float sk_half_to_float_scalar(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exponent = (h >> 10) & 0x1f;
    uint32_t mantissa = h & 0x3ff;
    if (exponent == 0x1f) return sk_bits_float(sign | 0x7f800000u | (mantissa << 13));
    if (exponent == 0) {
        // Subnormal half: mantissa * 2^-24, exactly representable in float.
        float magnitude = (float)mantissa * 5.9604644775390625e-08f;
        return sign ? -magnitude : magnitude;
    }
    return sk_bits_float(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

/// Float -> half with round-to-nearest-even, as `vcvtps2ph` with rounding mode 0 does it:
/// overflow goes to infinity, tiny values to (signed) subnormals or zero, NaN stays NaN.
static inline uint16_t sk_float_to_half_scalar(float f) {
    uint32_t x = sk_float_bits(f);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t magnitude = x & 0x7fffffff;
    if (magnitude >= 0x7f800000u) {                       // Inf or NaN
        uint32_t nan_payload = magnitude > 0x7f800000u ? (0x200 | ((magnitude >> 13) & 0x3ff)) : 0;
        return (uint16_t)(sign | 0x7c00 | nan_payload);
    }
    if (magnitude >= 0x477ff000u) return (uint16_t)(sign | 0x7c00);   // rounds past 65504
    if (magnitude < 0x38800000u) {                        // below the smallest normal half, 2^-14
        // Result is subnormal: round magnitude / 2^-24 to an integer, ties to even.
        float scaled = sk_bits_float(magnitude) * 16777216.0f;   // exact: a power of two
        float rounded = nearbyintf(scaled);                   // default mode: ties to even
        return (uint16_t)(sign | (uint32_t)rounded);
    }
    // Normal: drop 13 mantissa bits with ties-to-even; a carry may bump the exponent, which is right.
    uint32_t biased = magnitude - (112u << 23);
    uint32_t round_bit = 0x1000, sticky_mask = 0x0fff;
    uint32_t half = biased >> 13;
    if ((biased & round_bit) && ((biased & sticky_mask) || (half & 1))) half += 1;
    return (uint16_t)(sign | half);
}

static inline int sk_round_up(int value, int multiple) { return (value + multiple - 1) / multiple * multiple; }

/// Clamp, then round to nearest with ties to even (as `vcvtps2dq` does in the default mode). Every
/// quantizer rounds this way so the fast and portable paths agree bit for bit. Adding and removing
/// 1.5 · 2^23 rounds any |v| < 2^22 to an integer in the current (default: nearest-even) mode without
/// a libm call, which baseline x86-64 would otherwise need (no SSE4.1 `roundss`).
static inline int sk_round_clamp(float value, int low, int high) {
    if (!(value >= (float)low)) value = (float)low;     // also maps NaN to `low`
    if (value > (float)high) value = (float)high;
    float shifted = value + 12582912.0f;
    return (int)(shifted - 12582912.0f);
}

#if SK_X86
/// max |row[k]| over K floats (int8.c).
float sk_row_amax_avx2(const float *row, int K);
/// out[k] = clamp(round_even(row[k] · inverse), ±127) for k < K, zeros for K <= k < Kp (int8.c).
void sk_quantize_row_avx2(const float *row, int K, int Kp, float inverse, int8_t *out);
#endif

/// The output step of every integer kernel's AVX2 and portable tiles, for `mr` rows and one panel of
/// SK_PANEL_CHANNELS channels from n0: y[m + r, n0 + c] = (float)sums[r][c] · (row_scales[m + r] ·
/// channel_scales[n0 + c]) + bias[n0 + c], only the real channels (n0 + c < N); bias may be NULL.
/// Multiply, then add (no FMA: FP_CONTRACT is off below), as the VNNI store does, so all levels agree.
#pragma STDC FP_CONTRACT OFF
static inline void sk_store_panel_sums(float *y, int N, const float *row_scales, const float *channel_scales,
                                       const float *bias, int m, int mr, int n0, int32_t sums[][SK_PANEL_CHANNELS]) {
    int valid = N - n0 < SK_PANEL_CHANNELS ? N - n0 : SK_PANEL_CHANNELS;
    for (int r = 0; r < mr; r++) {
        float *out = y + (size_t)(m + r) * N + n0;
        for (int c = 0; c < valid; c++) {
            float value = (float)sums[r][c] * (row_scales[m + r] * channel_scales[n0 + c]);
            out[c] = bias ? value + bias[n0 + c] : value;
        }
    }
}

#if SK_X86
/// Four activation bytes as one int32, for a broadcast to every lane (no alignment needed).
static inline int32_t sk_load_i32(const int8_t *p) { int32_t v; memcpy(&v, p, sizeof v); return v; }

/// The output step of the INT8 and INT4 VNNI tiles for one row and one 16-channel panel:
/// out[c] = (float)sum[c] · (row_scale · channel_scales[c]) + bias[c] for the lanes in `valid`, the same
/// operations in the same order as the scalar store of every other path (no FMA), so all levels agree.
/// channel_scales and bias point at the panel's first channel; bias may be NULL.
#pragma STDC FP_CONTRACT OFF
SK_INLINE SK_TARGET_AVX512_VNNI void sk_store_dequantized_avx512(float *out, __m512i sum, float row_scale,
                                                                 const float *channel_scales, const float *bias, int valid) {
    __mmask16 lanes = (__mmask16)((1u << valid) - 1u);
    __m512 scale = _mm512_mul_ps(_mm512_set1_ps(row_scale), _mm512_maskz_loadu_ps(lanes, channel_scales));
    __m512 value = _mm512_mul_ps(_mm512_cvtepi32_ps(sum), scale);
    if (bias) value = _mm512_add_ps(value, _mm512_maskz_loadu_ps(lanes, bias));
    _mm512_mask_storeu_ps(out, lanes, value);
}
#endif

#endif // SANKSHEP_QUANT_COMMON_H
