#ifndef GRADNORMIR_CSHIMS_H
#define GRADNORMIR_CSHIMS_H
// OpenBLAS's CBLAS interface (sgemm, openblas_set_num_threads, openblas_get_corename)
// and LAPACKE (Cholesky and symmetric solves for the Mahalanobis baseline).
#include <cblas.h>
#include <lapacke.h>
#endif
