#pragma once
// Shared helpers for bench_core (xgrad) and bench_core_torch (libtorch): timing statistics, the
// machine banner, result lines, a global operator-new counter, and the hand-written reference
// kernels (bench_reference*.cpp) that both binaries compare against.
//
// Header-only apart from the reference kernels; include it from exactly one .cpp per executable
// (it defines the replaceable global operator new/delete).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "bench_reference.hpp"

#if __has_include(<sys/single_threaded.h>)
#include <sys/single_threaded.h>  // glibc >= 2.32: __libc_single_threaded
#define BENCH_HAVE_SINGLE_THREADED 1
#endif

namespace bench {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

/// Keeps the compiler from discarding a computed value.
template <class T>
inline void do_not_optimize(const T& value) {
  asm volatile("" : : "r,m"(value) : "memory");
}
inline void clobber_memory() { asm volatile("" : : : "memory"); }

struct Stats {
  double median = 0, min = 0, max = 0;
  size_t n = 0;
};

inline Stats stats_of(std::vector<double> v) {
  Stats s;
  s.n = v.size();
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  s.min = v.front();
  s.max = v.back();
  s.median = v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
  return s;
}

// ---- command line ------------------------------------------------------------------------------
struct Options {
  int reps = 0;          // 0 = per-case default (always >= 20)
  int warmup = 3;
  std::string only;      // run only this case ("overhead", "tanh_bias", "matmul")
  bool quick = false;    // fewer repetitions (still >= 20), for smoke tests
  bool idle_thread = false;  // start one sleeping thread first (a multi-threaded process, as in an
                             // application with a data loader or a BLAS pool)
  double profile = 0;    // > 0: run only the framework's contender of each selected case for this
                         // many seconds, untimed (for perf record / valgrind --tool=callgrind)
};

inline Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* name) -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", name);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--reps") o.reps = std::max(20, std::atoi(value("--reps").c_str()));
    else if (a == "--warmup") o.warmup = std::max(1, std::atoi(value("--warmup").c_str()));
    else if (a == "--only") o.only = value("--only");
    else if (a == "--quick") o.quick = true;
    else if (a == "--idle-thread") o.idle_thread = true;
    else if (a == "--profile") o.profile = std::max(0.01, std::atof(value("--profile").c_str()));
    else if (a == "-h" || a == "--help") {
      std::printf("usage: %s [--reps N>=20] [--warmup N] [--only overhead|tanh_bias|matmul] [--quick]\n"
                  "          [--profile SECONDS]   (profiling mode: only the framework's contender, untimed)\n"
                  "          [--idle-thread]       (start one sleeping thread first: multi-threaded process)\n", argv[0]);
      std::exit(0);
    } else {
      std::fprintf(stderr, "unknown argument %s (try --help)\n", a.c_str());
      std::exit(2);
    }
  }
  return o;
}

inline int reps_for(const Options& o, int default_reps) {
  if (o.reps > 0) return o.reps;
  return o.quick ? 20 : default_reps;
}
inline bool selected(const Options& o, const char* name) { return o.only.empty() || o.only == name; }

/// With --idle-thread: a thread that only sleeps until the program ends.
class IdleThread {
 public:
  explicit IdleThread(bool start) {
    if (start)
      thread_ = std::thread([this] {
        while (!stop_.load()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      });
  }
  ~IdleThread() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

/// Profiling mode: calls body() in a loop for opt.profile seconds and reports the call count.
template <class F>
void profile_loop(const Options& o, const char* what, F&& body) {
  auto start = Clock::now();
  uint64_t calls = 0;
  while (seconds_since(start) < o.profile) {
    for (int i = 0; i < 10; ++i) body();
    calls += 10;
  }
  std::printf("profile: %s: %llu calls in %.2f s (%.3f us/call)\n", what, static_cast<unsigned long long>(calls),
              seconds_since(start), 1e6 * seconds_since(start) / double(calls));
}

// ---- machine banner ----------------------------------------------------------------------------
inline std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos) {
        std::string m = line.substr(colon + 1);
        m.erase(0, m.find_first_not_of(" \t"));
        return m;
      }
    }
  }
  return "unknown";
}

inline std::string now_string() {
  std::time_t t = std::time(nullptr);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S %Z", std::localtime(&t));
  return buf;
}

inline const char* env_or(const char* name, const char* fallback = "(unset)") {
  const char* v = std::getenv(name);
  return v ? v : fallback;
}

/// "yes"/"no": whether glibc still considers the process single-threaded. It matters for the
/// overhead case: once a second thread exists (e.g. OpenBLAS's worker pool when
/// OPENBLAS_NUM_THREADS > 1), libstdc++'s shared_ptr switches to atomic reference counting and
/// glibc malloc to its locked paths.
inline const char* single_threaded_string() {
#ifdef BENCH_HAVE_SINGLE_THREADED
  return __libc_single_threaded ? "yes" : "no (another thread exists: atomic shared_ptr refcounts, locked malloc)";
#else
  return "unknown";
#endif
}

inline void print_banner(const char* program, const std::string& extra) {
  std::printf("== %s ==\n", program);
  std::printf("date:                 %s\n", now_string().c_str());
  std::printf("cpu:                  %s\n", cpu_model().c_str());
  std::printf("nproc:                %u\n", std::thread::hardware_concurrency());
  {
    std::ifstream in("/proc/loadavg");
    std::string load;
    std::getline(in, load);
    std::printf("loadavg at start:     %s  (other processes on the cores skew results)\n", load.c_str());
  }
  std::printf("OPENBLAS_CORETYPE:    %s\n", env_or("OPENBLAS_CORETYPE"));
  std::printf("OPENBLAS_NUM_THREADS: %s\n", env_or("OPENBLAS_NUM_THREADS"));
  std::printf("%s", extra.c_str());
  std::printf("single-threaded:      %s\n", single_threaded_string());
  std::printf("timing: std::chrono::steady_clock; medians of repeated runs after warm-up; contenders alternate "
              "repetition by repetition\n\n");
}

/// Machine-readable line, aggregated by scripts/bench.sh:
///   RESULT bench=<binary> case=<case> metric=<name> value=<median> best=<best repetition> unit=<unit>
/// (best = the fastest repetition: the minimum time, or the maximum GFLOP/s / fraction).
inline void result_line(const char* binary, const char* case_name, const char* metric, double median, double best,
                        const char* unit) {
  std::printf("RESULT bench=%s case=%s metric=%s value=%.6g best=%.6g unit=%s\n", binary, case_name, metric, median,
              best, unit);
}

// ---- alternating runs ---------------------------------------------------------------------------
/// Runs `contenders` in rotating order: `warmup` untimed rounds, then `reps` timed repetitions in
/// which every contender runs once (repetition r starts with contender r mod n). Each contender
/// returns the seconds of its own repetition (it may loop internally). Returns samples[c][r].
inline std::vector<std::vector<double>> alternate(const std::vector<std::function<double()>>& contenders, int warmup,
                                                  int reps) {
  const size_t n = contenders.size();
  for (int w = 0; w < warmup; ++w)
    for (const auto& c : contenders) c();
  std::vector<std::vector<double>> samples(n);
  for (int r = 0; r < reps; ++r)
    for (size_t k = 0; k < n; ++k) {
      size_t c = (k + static_cast<size_t>(r)) % n;
      samples[c].push_back(contenders[c]());
    }
  return samples;
}

/// num[r] / den[r] for each repetition r (both measured in the same repetition).
inline std::vector<double> paired_ratios(const std::vector<double>& num, const std::vector<double>& den) {
  std::vector<double> r;
  for (size_t i = 0; i < num.size() && i < den.size(); ++i) r.push_back(num[i] / den[i]);
  return r;
}

inline std::string fmt_num(double v, int precision = 3) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", precision, v);
  return buf;
}

/// One line of the summary table printed at the end of each binary.
struct Row {
  std::string case_name, metric, value, baseline, ratio, target, status;
};
inline std::vector<Row> g_summary;

inline void print_summary(const char* binary, const char* value_column) {
  std::printf("== summary (%s, OPENBLAS_NUM_THREADS=%s) ==\n", binary, env_or("OPENBLAS_NUM_THREADS"));
  std::printf("%-10s | %-28s | %-12s | %-22s | %-8s | %-10s | %s\n", "case", "metric", value_column, "baseline", "ratio",
              "target", "status");
  for (const Row& r : g_summary)
    std::printf("%-10s | %-28s | %-12s | %-22s | %-8s | %-10s | %s\n", r.case_name.c_str(), r.metric.c_str(),
                r.value.c_str(), r.baseline.c_str(), r.ratio.c_str(), r.target.c_str(), r.status.c_str());
}

// ---- allocation counter ------------------------------------------------------------------------
/// Calls to the global operator new made by this thread. A plain thread_local increment (no locked
/// atomic: a `lock xadd` per allocation measurably inflated the overhead case).
inline thread_local uint64_t t_new_calls = 0;
inline uint64_t new_calls() { return t_new_calls; }

/// 64-byte aligned float buffer (same alignment as xgrad's caching allocator).
struct AlignedBuffer {
  float* data = nullptr;
  size_t size = 0;
  explicit AlignedBuffer(size_t n) : size(n) {
    size_t bytes = ((n * sizeof(float) + 63) / 64) * 64;
    data = static_cast<float*>(std::aligned_alloc(64, bytes));
    if (!data) throw std::bad_alloc();
    std::memset(data, 0, bytes);
  }
  ~AlignedBuffer() { std::free(data); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
};

inline double max_abs_diff(const float* a, const float* b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, static_cast<double>(std::abs(a[i] - b[i])));
  return m;
}

inline const char* pass_fail(bool ok) { return ok ? "PASS" : "MISS"; }

}  // namespace bench

// Counting replacements of the global allocation functions (one definition per program: this
// header is included by exactly one translation unit of each benchmark executable).
#ifndef BENCH_NO_NEW_COUNTER
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"  // new = malloc here, so free is right
#endif
void* operator new(std::size_t size) {
  ++bench::t_new_calls;
  if (size == 0) size = 1;
  if (void* p = std::malloc(size)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) {
  ++bench::t_new_calls;
  if (size == 0) size = 1;
  if (void* p = std::malloc(size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif
