// Elementwise kernels of the encoder; see include/CKernels.h.
#include "CKernels.h"

#include <math.h>
#include <string.h>

typedef float v8f __attribute__((vector_size(32)));
typedef int v8i __attribute__((vector_size(32)));

// The helpers are macros, not functions: the baseline build may not pass 32-byte vectors by
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

#if defined(__x86_64__)
// x86-64-v3 (AVX2 and FMA, among others), used when the CPU has AVX2 and FMA.
#define GNI_ATTR __attribute__((target("arch=x86-64-v3")))
#define GNI_NAME(f) f##_v3
#include "kernels_body.h"
#undef GNI_ATTR
#undef GNI_NAME
#endif
// The baseline of the target (SSE2 on x86-64): two 4-lane halves per vector, no FMA.
#define GNI_ATTR
#define GNI_NAME(f) f##_baseline
#include "kernels_body.h"
#undef GNI_ATTR
#undef GNI_NAME

/// Whether this CPU runs the x86-64-v3 kernels (they need AVX2 and FMA).
static int cpuHasV3(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

/// 1 when the x86-64-v3 kernels run: decided once, when the library loads.
static int useV3 = 0;

__attribute__((constructor)) static void chooseKernels(void) { useV3 = cpuHasV3(); }

const char *gni_kernel_set(void) { return useV3 ? "x86-64-v3 (AVX2, FMA)" : "baseline"; }

int gni_use_baseline(int on) {
    int was = !useV3;
    useV3 = on ? 0 : cpuHasV3();
    return was;
}

#if defined(__x86_64__)
#define DISPATCH(f, ...) do { if (useV3) f##_v3(__VA_ARGS__); else f##_baseline(__VA_ARGS__); } while (0)
#else
#define DISPATCH(f, ...) f##_baseline(__VA_ARGS__)
#endif

void gni_exp(float *out, const float *input, long count) { DISPATCH(exp, out, input, count); }
void gni_gelu_forward(float *out, const float *input, long count) { DISPATCH(gelu_forward, out, input, count); }
void gni_gelu_backward(float *dInput, const float *input, const float *dOut, long count) {
    DISPATCH(gelu_backward, dInput, input, dOut, count);
}
void gni_softmax_rows(float *x, long rows, long cols) { DISPATCH(softmax_rows, x, rows, cols); }
void gni_softmax_backward_rows(float *d, const float *p, long rows, long cols) {
    DISPATCH(softmax_backward_rows, d, p, rows, cols);
}
