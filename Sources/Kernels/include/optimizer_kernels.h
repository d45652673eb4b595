// Sankshep optimizer kernels: the element-wise AdamW update and the sum of squares behind gradient
// clipping. Both run over every parameter of the model each step (100M+ for bert-base), so they
// have an AVX2 path chosen at run time and a plain `_reference` loop beside it.
//
// The caller owns every pointer; nothing is kept after return. Buffers may be unaligned. Different
// threads may call these on disjoint ranges at the same time.
#ifndef SANKSHEP_OPTIMIZER_KERNELS_H
#define SANKSHEP_OPTIMIZER_KERNELS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The per-step factors of one AdamW update, computed once by the caller (in double, as PyTorch
/// does in Python) and rounded to float.
typedef struct {
    float decay_factor;          // 1 - lr * weight_decay (1 where weight decay does not apply)
    float one_minus_beta1;       // 1 - beta1
    float beta2;
    float one_minus_beta2;       // 1 - beta2
    float bias_correction2_sqrt; // sqrt(1 - beta2^t)
    float epsilon;
    float negative_step_size;    // -lr / (1 - beta1^t)
} sk_adamw_scalars;

/// One AdamW update of n parameters, in exactly torch.optim.AdamW's order of float operations:
///   p = p * decay_factor
///   m = m + one_minus_beta1 * (g - m)
///   v = v * beta2 + (one_minus_beta2 * g) * g
///   p = p + (negative_step_size * m) / (sqrt(v) / bias_correction2_sqrt + epsilon)
/// The fast and reference kernels give identical bits (no FMA contraction, IEEE sqrt and division).
/// params, first_moment, second_moment: (n,) updated in place; gradients: (n,) read only.
void sk_adamw_update(size_t n, float *params, const float *gradients, float *first_moment,
                     float *second_moment, const sk_adamw_scalars *scalars);
void sk_adamw_update_reference(size_t n, float *params, const float *gradients, float *first_moment,
                               float *second_moment, const sk_adamw_scalars *scalars);

/// Sum of x[i]^2. The fast kernel sums blocks of 1024 in float lanes and the blocks in double; the
/// reference sums every square in double. They agree to about 1e-6 relative.
double sk_sum_of_squares(const float *x, size_t n);
double sk_sum_of_squares_reference(const float *x, size_t n);

#ifdef __cplusplus
}
#endif

#endif // SANKSHEP_OPTIMIZER_KERNELS_H
