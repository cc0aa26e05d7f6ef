// libFuzzer entry point for the CSV dataset (the first byte picks header, delimiter, target column and target dtype).
// Built only in the clang configuration with -DXGRAD_FUZZ=ON; see tests/fuzz/CMakeLists.txt.
#include "fuzz_harness.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  xg::fuzz::run_csv(data, size);
  return 0;
}
