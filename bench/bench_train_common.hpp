#pragma once
// Shared by bench_train (xgrad, and the driver) and bench_train_torch (libtorch): the training
// cases of issue 6, the deterministic data and initial weights both libraries start from, and the
// worker protocol.
//
// Each library runs in its own process (a "worker"), so peak resident memory is each library's own
// and neither thread pool nor allocator disturbs the other. The driver starts one worker per library
// and then alternates them repetition by repetition over pipes:
//
//   worker -> driver   "ready <key>=<value> ..."      after setup and warm-up
//   driver -> worker   "run"                          one timed repetition
//   worker -> driver   "time <seconds> <loss> <cpu>"  its own steady_clock time of that repetition, the
//                                                   loss, and the process CPU time the repetition used
//   driver -> worker   "quit"
//   worker -> driver   "done peak_rss_kb=<VmHWM> ..." and exits
//
// Anything else a worker prints goes to stderr (passed through).
#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

namespace bench::train {

/// One benchmark case: a full training step (zero_grad + forward + loss + backward + optimizer step)
/// unless the description says otherwise.
struct Case {
  const char* name;
  const char* description;
  int steps_per_rep;  // training steps in one timed repetition (an epoch for G: 0 here)
  int default_reps;   // timed repetitions (>= 20, issue 6)
  int warmup_reps;
};

inline const std::vector<Case>& cases() {
  static const std::vector<Case> all = {
      {"A_mlp", "MLP 784-30-10 sigmoid, MSE, SGD lr 3.0, batch 10 (network.py)", 200, 30, 3},
      {"B_mlp_b64", "MLP 784-100-10 ReLU, cross-entropy, SGD lr 0.05 momentum 0.9, batch 64", 50, 30, 3},
      {"B_mlp_b256", "MLP 784-100-10 ReLU, cross-entropy, SGD lr 0.05 momentum 0.9, batch 256", 20, 30, 3},
      {"C_lenet", "LeNet-like CNN 1-32-64 5x5 pad 2, pool, 3136-1024, dropout 0.5, 1024-10, Adam, batch 64", 1, 20, 3},
      {"C_small_cnn", "small CNN conv 1-8 3x3, pool, conv 8-16 3x3, pool, 400-10, Adam, batch 64", 20, 30, 3},
      {"D_lstm", "LSTM 28-128, seq 28, batch 64, last hidden -> linear 10, cross-entropy, Adam", 2, 20, 3},
      {"F_batchnorm", "BatchNorm2d(32) training-mode forward + backward on [64, 32, 14, 14] (no optimizer)", 20, 30, 3},
      {"G_epoch_mlp", "one epoch of Fashion-MNIST (60,000, shuffled, batch 64): case B's MLP and SGD", 0, 20, 1},
      {"G_epoch_cnn", "one epoch of Fashion-MNIST (60,000, shuffled, batch 64): the small CNN, Adam", 0, 20, 1},
  };
  return all;
}

inline const Case* find_case(const std::string& name) {
  for (const Case& c : cases())
    if (name == c.name) return &c;
  return nullptr;
}

/// Fashion-MNIST as Debian-style datasets are installed on this machine (gzip'ed idx files).
inline std::string fashion_mnist_root() {
  const char* env = std::getenv("XGRAD_BENCH_FASHION_MNIST");
  return env ? env : "/usr/share/datasets/fashion-mnist";
}

// ---- deterministic numbers (identical in both processes) -----------------------------------------
inline uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/// n floats uniform in [low, high), a pure function of seed.
inline std::vector<float> uniform_values(size_t n, float low, float high, uint64_t seed) {
  std::vector<float> v(n);
  uint64_t state = seed * 0x2545F4914F6CDD1Dull + 1;
  for (auto& x : v) x = low + (high - low) * static_cast<float>((splitmix64(state) >> 40) * (1.0 / 16777216.0));
  return v;
}

/// The initial values of parameter number `index` (in named_parameters() order, which both
/// libraries' models share) of the given shape: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) as PyTorch's
/// default init of Linear/Conv (fan_in = numel / shape[0]; 1-D parameters use bound 0.1).
inline std::vector<float> initial_parameter(size_t index, const std::vector<int64_t>& shape) {
  size_t n = 1;
  for (int64_t d : shape) n *= static_cast<size_t>(d);
  float bound = 0.1f;
  if (shape.size() >= 2) bound = 1.0f / std::sqrt(static_cast<float>(n / static_cast<size_t>(shape[0])));
  return uniform_values(n, -bound, bound, 1000 + index);
}

/// Synthetic batch for the step cases: pixels U[0, 1) and labels (i * 7 + seed) % 10.
inline std::vector<float> synthetic_inputs(size_t n, uint64_t seed) { return uniform_values(n, 0.f, 1.f, seed); }
inline std::vector<int64_t> synthetic_labels(size_t n, uint64_t seed) {
  std::vector<int64_t> labels(n);
  uint64_t state = seed;
  for (auto& l : labels) l = static_cast<int64_t>(splitmix64(state) % 10);
  return labels;
}

// ---- process information ---------------------------------------------------------------------------
/// Peak resident set size of this process in KiB (VmHWM), or -1.
inline long peak_rss_kib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::atol(line.c_str() + 6);
  return -1;
}

/// CPU seconds used by this process so far (all its threads). On a shared machine the wall time of a
/// repetition also counts the time the process waited for a core; the CPU time does not.
inline double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// ---- worker side -----------------------------------------------------------------------------------
/// What a library's worker implements for one case.
struct Worker {
  std::function<double()> run_rep;       // one timed repetition; returns seconds (own clock)
  std::function<double()> last_loss;     // loss of the latest step (for the sanity line)
  std::string ready_info;                // extra "key=value" pairs for the ready line
};

/// A training-step worker for either library: a repetition is `c.steps_per_rep` calls of `step` (one
/// zero_grad + forward + loss + backward + optimizer step), which stores its loss in *loss.
template <class StepFn>
Worker make_step_worker(const Case& c, StepFn step, std::shared_ptr<double> loss, std::string info) {
  Worker w;
  const int steps = c.steps_per_rep;
  w.run_rep = [steps, step]() mutable {
    auto t0 = Clock::now();
    for (int s = 0; s < steps; ++s) step();
    return seconds_since(t0);
  };
  w.last_loss = [loss] { return *loss; };
  w.ready_info = std::move(info);
  return w;
}

/// Runs the protocol on stdin/stdout until "quit" (or end of input). Returns the exit code.
inline int serve(Worker& worker, const Case& c, int warmup_override) {
  const int warmup = warmup_override >= 0 ? warmup_override : c.warmup_reps;
  for (int w = 0; w < warmup; ++w) worker.run_rep();
  std::printf("ready %s\n", worker.ready_info.c_str());
  std::fflush(stdout);
  std::string command;
  while (std::getline(std::cin, command)) {
    if (command == "run") {
      const double cpu_start = process_cpu_seconds();
      const double seconds = worker.run_rep();
      const double cpu = process_cpu_seconds() - cpu_start;
      std::printf("time %.9f %.6g %.9f\n", seconds, worker.last_loss(), cpu);
      std::fflush(stdout);
    } else if (command == "quit") {
      break;
    } else {
      std::fprintf(stderr, "worker: unknown command '%s'\n", command.c_str());
      return 2;
    }
  }
  std::printf("done peak_rss_kb=%ld last_loss=%.6g\n", peak_rss_kib(), worker.last_loss());
  std::fflush(stdout);
  return 0;
}

/// Worker command line: --worker --case NAME --threads N [--warmup N].
struct WorkerArgs {
  bool worker = false;
  std::string case_name;
  int threads = 1;
  int warmup = -1;
  double profile = 0;  // > 0: no protocol, run the case for this many seconds (perf / callgrind)
};

inline bool parse_worker_args(int argc, char** argv, WorkerArgs& args) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--worker") args.worker = true;
    else if (a == "--case") args.case_name = next();
    else if (a == "--threads") args.threads = std::max(1, std::atoi(next().c_str()));
    else if (a == "--warmup") args.warmup = std::max(0, std::atoi(next().c_str()));
    else if (a == "--profile") args.profile = std::atof(next().c_str());
    else return false;
  }
  return true;
}

/// --profile mode: calls run_rep until `seconds` have passed, then prints the count.
inline int profile_worker(Worker& worker, const Case& c, double seconds) {
  double total = 0;
  int reps = 0;
  while (total < seconds) {
    total += worker.run_rep();
    ++reps;
  }
  std::fprintf(stderr, "profile %s: %d reps in %.2f s (%.3f ms/rep), loss %.4g\n", c.name, reps, total, 1e3 * total / reps,
               worker.last_loss());
  return 0;
}

}  // namespace bench::train
