// The plain tanh_bias loop again, compiled with -ffast-math (see bench/CMakeLists.txt) so that GCC
// vectorises std::tanh through glibc's libmvec. Same source as tanh_bias_plain.
#include <cmath>
#include <cstdint>

#include "bench_reference.hpp"

namespace bench {

void tanh_bias_plain_fastmath(const float* __restrict x, const float* __restrict b, float* __restrict y,
                              int64_t rows, int64_t cols) {
  for (int64_t i = 0; i < rows; ++i) {
    const float* xr = x + i * cols;
    float* yr = y + i * cols;
    for (int64_t j = 0; j < cols; ++j) yr[j] = std::tanh(xr[j] + b[j]);
  }
}

}  // namespace bench
