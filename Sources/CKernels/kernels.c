// Elementwise kernels of the encoder; see include/CKernels.h.
#include "CKernels.h"

#include <math.h>
#include <string.h>

typedef float v8f __attribute__((vector_size(32)));
typedef int v8i __attribute__((vector_size(32)));

#if defined(__x86_64__) && defined(__clang__)
#define GNI_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define GNI_CLONES
#endif
// The helpers are macros, not functions: the baseline clone may not pass 32-byte vectors by
// value (that would change the ABI without AVX), even to inlined functions.
#define SPLAT(v) ((v8f){(v), (v), (v), (v), (v), (v), (v), (v)})
#define LOAD8(p) ({ v8f v_; memcpy(&v_, (p), sizeof v_); v_; })
#define STORE8(p, v) do { v8f s_ = (v); memcpy((p), &s_, sizeof s_); } while (0)
/// The first k (< 8) floats at p, the other lanes `fill`.
#define LOAD_PARTIAL(p, k, fill) ({ \
    float b_[8] = {fill, fill, fill, fill, fill, fill, fill, fill}; \
    memcpy(b_, (p), (size_t)(k) * sizeof(float)); LOAD8(b_); })
#define STORE_PARTIAL(p, v, k) do { float b_[8]; STORE8(b_, (v)); memcpy((p), b_, (size_t)(k) * sizeof(float)); } while (0)
/// Lanes of b where the mask m is set, else of a.
#define SELECT8(m, b, a) ((v8f)(((v8i)(b) & (m)) | ((v8i)(a) & ~(m))))
/// Lane-wise min and max that keep a NaN of `a` (the comparison is false for it).
#define MIN8(a, b) ({ v8f a_ = (a), b_ = (b); SELECT8(b_ < a_, b_, a_); })
#define MAX8(a, b) ({ v8f a_ = (a), b_ = (b); SELECT8(a_ < b_, b_, a_); })
#define SUM8(v) ({ v8f s_ = (v); ((s_[0] + s_[4]) + (s_[1] + s_[5])) + ((s_[2] + s_[6]) + (s_[3] + s_[7])); })
#define HMAX8(v) ({ v8f h_ = (v); float m_ = h_[0]; for (int i_ = 1; i_ < 8; i_++) m_ = m_ < h_[i_] ? h_[i_] : m_; m_; })

/// e^x, Cephes-style: x = k*ln2 + r with |r| <= ln2/2, e^r by a degree-6 polynomial, times 2^k
/// built in the exponent bits. k is rounded with the 1.5*2^23 trick, whose float bit pattern
/// also carries k. Inputs are clamped to [-87.3, 88.3]: e^-87.3 ~ 1.2e-38 stands in for 0.
#define EXP8(x) ({ \
    v8f xc_ = MAX8(MIN8((x), SPLAT(88.3f)), SPLAT(-87.3f)); \
    v8f t_ = xc_ * 1.44269504088896341f + 12582912.0f; \
    v8f k_ = t_ - 12582912.0f; \
    /* Two-constant Cody-Waite reduction: ln2 = 0.693359375 - 2.12194440e-4 (+ tiny). */ \
    v8f r_ = xc_ - k_ * 0.693359375f; \
    r_ = r_ + k_ * 2.12194440e-4f; \
    v8f p_ = SPLAT(1.9875691500e-4f); \
    p_ = p_ * r_ + 1.3981999507e-3f; \
    p_ = p_ * r_ + 8.3334519073e-3f; \
    p_ = p_ * r_ + 4.1665795894e-2f; \
    p_ = p_ * r_ + 1.6666665459e-1f; \
    p_ = p_ * r_ + 5.0000001201e-1f; \
    v8f er_ = p_ * (r_ * r_) + r_ + 1.0f; \
    v8i bits_ = ((v8i)t_ - 0x4B400000 + 127) << 23; \
    er_ * (v8f)bits_; })

/// Phi(x), the standard normal CDF, as erfc(|x|/sqrt2)/2 mirrored by the sign of x. erfc uses the
/// Chebyshev fit of Numerical Recipes 6.2 (fractional error < 1.2e-7):
/// t = 1/(1 + z/2), erfc(z) = t*exp(-z^2 - 1.26551223 + t*P(t)).
#define NORMAL_CDF8(x) ({ \
    v8f x8_ = (x); \
    v8f z_ = (v8f)((v8i)x8_ & 0x7FFFFFFF) * 0.70710678118654752f; \
    v8f t8_ = 1.0f / (1.0f + 0.5f * z_); \
    v8f q_ = SPLAT(0.17087277f); \
    q_ = q_ * t8_ - 0.82215223f; \
    q_ = q_ * t8_ + 1.48851587f; \
    q_ = q_ * t8_ - 1.13520398f; \
    q_ = q_ * t8_ + 0.27886807f; \
    q_ = q_ * t8_ - 0.18628806f; \
    q_ = q_ * t8_ + 0.09678418f; \
    q_ = q_ * t8_ + 0.37409196f; \
    q_ = q_ * t8_ + 1.00002368f; \
    q_ = q_ * t8_ - 1.26551223f; \
    v8f half_ = 0.5f * t8_ * EXP8(-z_ * z_ + q_); /* Phi(-|x|) */ \
    SELECT8(x8_ < 0.0f, half_, 1.0f - half_); })

#define GELU8(x) ({ v8f g_ = (x); g_ * NORMAL_CDF8(g_); })
#define GELU_GRAD8(x) ({ v8f g_ = (x); NORMAL_CDF8(g_) + g_ * 0.39894228040143268f * EXP8(-0.5f * g_ * g_); })

GNI_CLONES void gni_exp(float *out, const float *input, long count) {
    long i = 0;
    for (; i + 8 <= count; i += 8) STORE8(out + i, EXP8(LOAD8(input + i)));
    if (i < count) STORE_PARTIAL(out + i, EXP8(LOAD_PARTIAL(input + i, count - i, 0)), count - i);
}

GNI_CLONES void gni_gelu_forward(float *out, const float *input, long count) {
    long i = 0;
    for (; i + 8 <= count; i += 8) STORE8(out + i, GELU8(LOAD8(input + i)));
    if (i < count) STORE_PARTIAL(out + i, GELU8(LOAD_PARTIAL(input + i, count - i, 0)), count - i);
}

GNI_CLONES void gni_gelu_backward(float *dInput, const float *input, const float *dOut, long count) {
    long i = 0;
    for (; i + 8 <= count; i += 8) STORE8(dInput + i, LOAD8(dOut + i) * GELU_GRAD8(LOAD8(input + i)));
    if (i < count) {
        long k = count - i;
        STORE_PARTIAL(dInput + i, LOAD_PARTIAL(dOut + i, k, 0) * GELU_GRAD8(LOAD_PARTIAL(input + i, k, 0)), k);
    }
}

GNI_CLONES void gni_softmax_rows(float *x, long rows, long cols) {
    const long full = cols & ~7L, k = cols - full;
    for (long r = 0; r < rows; r++) {
        float *row = x + r * cols;
        v8f mv = SPLAT(-INFINITY);
        for (long j = 0; j < full; j += 8) mv = MAX8(mv, LOAD8(row + j));
        if (k) mv = MAX8(mv, LOAD_PARTIAL(row + full, k, -INFINITY));
        const v8f m = SPLAT(HMAX8(mv));
        v8f sv = SPLAT(0);
        for (long j = 0; j < full; j += 8) {
            v8f e = EXP8(LOAD8(row + j) - m);
            STORE8(row + j, e);
            sv += e;
        }
        if (k) {
            // Padding lanes hold -inf: e^-inf is clamped to ~1e-38, so they are masked out of the sum.
            v8f e = EXP8(LOAD_PARTIAL(row + full, k, -INFINITY) - m);
            STORE_PARTIAL(row + full, e, k);
            v8i lane = {0, 1, 2, 3, 4, 5, 6, 7};
            sv += SELECT8(lane < (int)k, e, SPLAT(0));
        }
        const v8f inv = SPLAT(1.0f / SUM8(sv));
        for (long j = 0; j < full; j += 8) STORE8(row + j, LOAD8(row + j) * inv);
        if (k) STORE_PARTIAL(row + full, LOAD_PARTIAL(row + full, k, 0) * inv, k);
    }
}

GNI_CLONES void gni_softmax_backward_rows(float *d, const float *p, long rows, long cols) {
    const long full = cols & ~7L, k = cols - full;
    for (long r = 0; r < rows; r++) {
        const float *pr = p + r * cols;
        float *dr = d + r * cols;
        v8f acc = SPLAT(0);
        for (long j = 0; j < full; j += 8) acc += LOAD8(pr + j) * LOAD8(dr + j);
        if (k) acc += LOAD_PARTIAL(pr + full, k, 0) * LOAD_PARTIAL(dr + full, k, 0);
        const v8f dot = SPLAT(SUM8(acc));
        for (long j = 0; j < full; j += 8) STORE8(dr + j, LOAD8(pr + j) * (LOAD8(dr + j) - dot));
        if (k) STORE_PARTIAL(dr + full, LOAD_PARTIAL(pr + full, k, 0) * (LOAD_PARTIAL(dr + full, k, 0) - dot), k);
    }
}
