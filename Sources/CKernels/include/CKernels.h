#ifndef GRADNORMIR_CKERNELS_H
#define GRADNORMIR_CKERNELS_H
// Elementwise kernels of the encoder (GELU, softmax), written once in C with 8-lane vector
// extensions. On x86-64 each is compiled twice — for x86-64-v3 (AVX2 and FMA) and for the
// baseline (SSE2) — and the first is used when the CPU has AVX2 and FMA (decided when the
// library loads). Swift has no per-function target attribute, and building the whole package for
// x86-64-v3 would need unsafe flags (no longer usable as a dependency) and fail on older CPUs.
// Every element goes through the same 8-lane code (tails are padded), so a result does not depend
// on how a range is split among workers. NaN inputs give NaN outputs.

/// Which kernels run: "x86-64-v3 (AVX2, FMA)" or "baseline".
const char *gni_kernel_set(void);

/// For tests: on != 0 runs the baseline kernels even where x86-64-v3 is available; 0 restores the
/// choice made at load. Returns 1 when the baseline was in use before the call. Not thread-safe:
/// call it only while no kernel runs.
int gni_use_baseline(int on);

/// e^x of each element (relative error < 1e-7 on [-80, 20]; inputs clamped to [-87.3, 88.3]).
void gni_exp(float *out, const float *input, long count);

/// out[i] = gelu(input[i]) = input[i] * Phi(input[i]) (exact-erf GELU). out may alias input.
void gni_gelu_forward(float *out, const float *input, long count);

/// dInput[i] = dOut[i] * gelu'(input[i]) (overwrites). dInput may alias dOut.
void gni_gelu_backward(float *dInput, const float *input, const float *dOut, long count);

/// Numerically stable softmax of each row of a (rows, cols) row-major matrix, in place.
void gni_softmax_rows(float *x, long rows, long cols);

/// Softmax backward of each row, in place: d = p * (d - sum_j d_j p_j).
void gni_softmax_backward_rows(float *d, const float *p, long rows, long cols);

#endif
