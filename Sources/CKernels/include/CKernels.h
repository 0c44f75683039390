#ifndef GRADNORMIR_CKERNELS_H
#define GRADNORMIR_CKERNELS_H
// Elementwise kernels of the encoder (GELU, softmax), written once in C with 8-lane vector
// extensions. On x86-64 each is compiled twice — for x86-64-v3 (AVX2 and FMA) and for the
// baseline — and the loader picks the clone the CPU supports (target_clones). Every element goes
// through the same 8-lane code (tails are padded), so a result does not depend on how a range is
// split among workers. NaN inputs give NaN outputs.

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
