#pragma once
// The loader-throughput benchmark, written once against libtorch's data API and compiled twice:
// bench_data.cpp with `namespace lib = xg`, bench_data_torch.cpp with `namespace lib = torch` (the same
// source compiling against both is itself part of the point). One "epoch" reads the whole dataset
// through MNIST -> Normalize<> -> Stack<> -> make_data_loader<SequentialSampler>, touching every batch
// (a checksum) but training nothing: the loader's cost alone.
//
//   bench_data[_torch] --data DIR [--workers 0,2] [--reps 5] [--batch 64]
// prints one line per epoch: "<impl> workers=W rep=R seconds=S samples_per_s=X checksum=C".
// DIR holds the raw (not gzip'ed) idx files: libtorch's MNIST reads only those.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace bench_data {

inline std::vector<size_t> parse_list(const std::string& text) {
  std::vector<size_t> out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    out.push_back(std::stoul(text.substr(start, comma - start)));
    start = comma + 1;
  }
  return out;
}

inline int run(const char* impl, int argc, char** argv) {
  std::string dir;
  std::vector<size_t> workers = {0, 2};
  int reps = 5;
  int64_t batch = 64;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--data") dir = value;
    else if (flag == "--workers") workers = parse_list(value);
    else if (flag == "--reps") reps = std::stoi(value);
    else if (flag == "--batch") batch = std::stoll(value);
    else {
      std::fprintf(stderr, "%s: unknown option %s\n", impl, flag.c_str());
      return 2;
    }
  }
  if (dir.empty()) {
    std::fprintf(stderr, "%s: --data DIR (raw idx files) is required\n", impl);
    return 2;
  }
  lib::set_num_threads(1);  // the loader's own threads only; intra-op pools would blur the comparison
  auto dataset = lib::data::datasets::MNIST(dir)
                     .map(lib::data::transforms::Normalize<>(0.2860, 0.3530))
                     .map(lib::data::transforms::Stack<>());
  const double samples = static_cast<double>(dataset.size().value());
  for (int rep = 0; rep < reps; ++rep) {
    for (size_t w : workers) {
      auto loader = lib::data::make_data_loader<lib::data::samplers::SequentialSampler>(
          dataset, lib::data::DataLoaderOptions().batch_size(batch).workers(w));
      const auto start = std::chrono::steady_clock::now();
      double checksum = 0;
      for (auto& b : *loader) checksum += b.data.template data_ptr<float>()[0] + static_cast<double>(b.target.size(0));
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf("%s workers=%zu rep=%d seconds=%.4f samples_per_s=%.0f checksum=%.4f\n", impl, w, rep, seconds, samples / seconds,
                  checksum);
      std::fflush(stdout);
    }
  }
  return 0;
}

}  // namespace bench_data
