#pragma once
// Hand-written reference kernels shared by bench_core and bench_core_torch.
#include <cstdint>

namespace bench {

/// y[i, j] = std::tanh(x[i, j] + b[j]), compiled with -O3 -march=native (strict IEEE math: GCC calls
/// scalar tanhf; it cannot vectorise tanhf without -ffast-math).
void tanh_bias_plain(const float* x, const float* b, float* y, int64_t rows, int64_t cols);
/// The same source compiled with -ffast-math: GCC vectorises the loop through glibc's libmvec
/// (_ZGV*_tanhf), the best a "plain loop" can get.
void tanh_bias_plain_fastmath(const float* x, const float* b, float* y, int64_t rows, int64_t cols);
/// Hand-vectorised with xsimd::batch<float> and xsimd::tanh (one fused pass, no temporaries).
void tanh_bias_xsimd(const float* x, const float* b, float* y, int64_t rows, int64_t cols);
/// Name of the xsimd architecture the reference was compiled for (e.g. "avx2", "avx512bw").
const char* xsimd_arch_name();

}  // namespace bench
