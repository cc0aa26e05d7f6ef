// Reference kernels for the tanh_bias case. Kept out of the benchmark's main translation unit so
// neither side gets to inline across the call (xgrad's ops are out-of-line calls too).
#include <cmath>
#include <cstdint>

#include <xsimd/xsimd.hpp>

#include "bench_reference.hpp"

namespace bench {

void tanh_bias_plain(const float* __restrict x, const float* __restrict b, float* __restrict y, int64_t rows,
                     int64_t cols) {
  for (int64_t i = 0; i < rows; ++i) {
    const float* xr = x + i * cols;
    float* yr = y + i * cols;
    for (int64_t j = 0; j < cols; ++j) yr[j] = std::tanh(xr[j] + b[j]);
  }
}

void tanh_bias_xsimd(const float* __restrict x, const float* __restrict b, float* __restrict y, int64_t rows,
                     int64_t cols) {
  using batch = xsimd::batch<float>;
  constexpr int64_t W = static_cast<int64_t>(batch::size);
  const int64_t vec_end = cols - cols % W;
  for (int64_t i = 0; i < rows; ++i) {
    const float* xr = x + i * cols;
    float* yr = y + i * cols;
    int64_t j = 0;
    for (; j < vec_end; j += W) {
      batch v = batch::load_unaligned(xr + j) + batch::load_unaligned(b + j);
      xsimd::tanh(v).store_unaligned(yr + j);
    }
    if (j < cols) {
      // Tail (1000 = 62 x 16 + 8 on AVX-512): one padded batch, not scalar tanhf (~18 ns each).
      alignas(64) float tx[W] = {}, tb[W] = {};
      const int64_t rest = cols - j;
      for (int64_t k = 0; k < rest; ++k) tx[k] = xr[j + k], tb[k] = b[j + k];
      xsimd::tanh(batch::load_aligned(tx) + batch::load_aligned(tb)).store_aligned(tx);
      for (int64_t k = 0; k < rest; ++k) yr[j + k] = tx[k];
    }
  }
}

const char* xsimd_arch_name() { return xsimd::default_arch::name(); }

}  // namespace bench
