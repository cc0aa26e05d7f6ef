// The intra-op thread pool behind xg::parallel_for.
//
// One job at a time: the caller publishes (generation, chunk count, next chunk) in one 64-bit word,
// every participant (the caller included) claims chunks from it with compare-and-swap, and the caller
// waits until all chunks are done. Claiming by CAS on the whole word means a worker that wakes late
// can never take a chunk of a job that has already finished: its generation no longer matches.
// The caller takes chunks too, so a worker that the OS has not scheduled yet costs nothing but the
// chunks it did not take.
//
// Workers spin for a short while after each job (a training step runs parallel loops a few to a few
// hundred microseconds apart, and a futex wake-up costs more than that), then sleep on a condition
// variable.
#include "xgrad/autograd/parallel.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "xgrad/autograd/error.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define XGRAD_CPU_RELAX() _mm_pause()
#else
#define XGRAD_CPU_RELAX() std::this_thread::yield()
#endif

// OpenBLAS's own thread control, when the BLAS in use is OpenBLAS (weak: absent with other BLAS).
extern "C" void openblas_set_num_threads(int threads) __attribute__((weak));

namespace xg {
namespace {

thread_local int t_thread_num = 0;
thread_local bool t_in_parallel = false;

/// How long an idle worker polls for the next job before it goes to sleep.
constexpr auto kSpinTime = std::chrono::microseconds(200);

/// The most threads xgrad runs: more than any machine's cores we target, and few enough that starting
/// them cannot exhaust the process's thread or memory limits (the chunk word holds up to 0xffff).
constexpr int kMaxThreads = 1024;

int positive_env(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr) return 0;
  // OMP_NUM_THREADS may be a list ("4,2"): its first entry is the outermost level.
  char* end = nullptr;
  const long n = std::strtol(value, &end, 10);
  if (end == value || n < 1) return 0;
  return static_cast<int>(std::min<long>(n, kMaxThreads));
}

int default_thread_count() {
  if (int n = positive_env("OMP_NUM_THREADS")) return n;
  if (int n = positive_env("OPENBLAS_NUM_THREADS")) return n;
  const long online = sysconf(_SC_NPROCESSORS_ONLN);
  return online > 0 ? static_cast<int>(std::min<long>(online, kMaxThreads)) : 1;
}

void keep_blas_single_threaded() {
  if (openblas_set_num_threads != nullptr) openblas_set_num_threads(1);
}

constexpr uint64_t pack(uint32_t generation, uint32_t chunks, uint32_t next) {
  return (uint64_t(generation) << 32) | (uint64_t(chunks) << 16) | uint64_t(next);
}
constexpr uint32_t generation_of(uint64_t s) { return uint32_t(s >> 32); }
constexpr uint32_t chunks_of(uint64_t s) { return uint32_t((s >> 16) & 0xffff); }
constexpr uint32_t next_of(uint64_t s) { return uint32_t(s & 0xffff); }

class Pool {
 public:
  Pool() : threads_(default_thread_count()) { keep_blas_single_threaded(); }

  int threads() const { return threads_.load(std::memory_order_relaxed); }

  /// Starts the n - 1 workers now, so that a failure is reported here (xg::Error) and not by some later
  /// op; the pool then keeps its previous size.
  void set_threads(int n) {
    std::lock_guard<std::mutex> run(run_mutex_);
    keep_blas_single_threaded();
    const int previous = threads();
    if (n == previous && static_cast<int>(workers_.size()) == n - 1) return;
    stop_workers();
    threads_.store(n, std::memory_order_relaxed);
    std::string failure;
    try {
      start_workers();
      return;
    } catch (const std::exception& error) {  // std::system_error from std::thread; bad_alloc
      failure = error.what();
    }
    stop_workers();
    threads_.store(previous, std::memory_order_relaxed);
    try {
      start_workers();
    } catch (const std::exception&) {
      stop_workers();  // not even the old size: run single-threaded
      threads_.store(1, std::memory_order_relaxed);
    }
    XG_ERROR("set_num_threads: could not start {} threads ({}); keeping {} thread(s)", n, failure, threads());
  }

  /// Runs the job on the pool, or serially when another thread is using the pool right now.
  void run(int64_t begin, int64_t end, int64_t chunks, detail::ChunkFunction fn, const void* context) {
    std::unique_lock<std::mutex> run(run_mutex_, std::try_to_lock);
    if (!run.owns_lock()) {
      run_serially(begin, end, chunks, fn, context);
      return;
    }
    try {
      start_workers();
    } catch (const std::exception&) {
      // Only the default size is started lazily (set_num_threads starts its own): go on with the
      // workers that did start rather than fail an op.
      threads_.store(static_cast<int>(workers_.size()) + 1, std::memory_order_relaxed);
    }
    begin_ = begin;
    end_ = end;
    chunks_ = chunks;
    fn_ = fn;
    context_ = context;
    error_ = nullptr;
    done_.store(0, std::memory_order_relaxed);
    const uint32_t generation = generation_of(state_.load(std::memory_order_relaxed)) + 1;
    // seq_cst pairs with the workers' sleepers_ increment: either a worker sees this job before it
    // sleeps, or this thread sees the sleeper and wakes it.
    state_.store(pack(generation, uint32_t(chunks), 0), std::memory_order_seq_cst);
    if (sleepers_.load(std::memory_order_seq_cst) > 0) {
      { std::lock_guard<std::mutex> lock(sleep_mutex_); }
      wake_.notify_all();
    }
    t_in_parallel = true;
    work_on(generation);
    // Chunks claimed by workers that are still running: short, so poll, yielding if it is not.
    for (int polls = 0; done_.load(std::memory_order_acquire) < chunks; ++polls) {
      if (polls < 4096) XGRAD_CPU_RELAX();
      else std::this_thread::yield();
    }
    t_in_parallel = false;
    if (error_) std::rethrow_exception(error_);
  }

  static void run_serially(int64_t begin, int64_t end, int64_t chunks, detail::ChunkFunction fn, const void* context) {
    // The same split as the parallel run, so results do not depend on who got the pool.
    t_in_parallel = true;
    std::exception_ptr error;
    for (int64_t i = 0; i < chunks; ++i) {
      try {
        fn(context, chunk_begin(begin, end, chunks, i), chunk_begin(begin, end, chunks, i + 1));
      } catch (...) {
        if (!error) error = std::current_exception();
      }
    }
    t_in_parallel = false;
    if (error) std::rethrow_exception(error);
  }

  static int64_t chunk_begin(int64_t begin, int64_t end, int64_t chunks, int64_t i) {
    const int64_t size = end - begin, base = size / chunks, extra = size % chunks;
    return begin + i * base + std::min(i, extra);
  }

 private:
  void start_workers() {
    const int wanted = threads() - 1;
    if (static_cast<int>(workers_.size()) == wanted) return;
    stop_workers();
    stop_.store(false);
    for (int i = 0; i < wanted; ++i) workers_.emplace_back([this, i] { worker_loop(i + 1); });
  }

  void stop_workers() {
    if (workers_.empty()) return;
    {
      std::lock_guard<std::mutex> lock(sleep_mutex_);
      stop_.store(true);
    }
    wake_.notify_all();
    for (auto& worker : workers_) worker.join();
    workers_.clear();
  }

  void worker_loop(int index) {
    t_thread_num = index;
    uint32_t seen = generation_of(state_.load(std::memory_order_acquire));
    for (;;) {
      // Poll for a new job, then sleep.
      const auto spin_until = std::chrono::steady_clock::now() + kSpinTime;
      uint64_t s = state_.load(std::memory_order_acquire);
      for (int polls = 0; generation_of(s) == seen && !stop_.load(std::memory_order_relaxed); ++polls) {
        XGRAD_CPU_RELAX();
        if ((polls & 255) == 255 && std::chrono::steady_clock::now() > spin_until) {
          std::unique_lock<std::mutex> lock(sleep_mutex_);
          sleepers_.fetch_add(1, std::memory_order_seq_cst);
          wake_.wait(lock, [&] { return stop_.load() || generation_of(state_.load(std::memory_order_seq_cst)) != seen; });
          sleepers_.fetch_sub(1, std::memory_order_relaxed);
        }
        s = state_.load(std::memory_order_acquire);
      }
      if (stop_.load()) return;
      seen = generation_of(s);
      t_in_parallel = true;
      work_on(seen);
      t_in_parallel = false;
    }
  }

  /// Claims and runs chunks of job `generation` until none is left.
  void work_on(uint32_t generation) {
    uint64_t s = state_.load(std::memory_order_acquire);
    for (;;) {
      if (generation_of(s) != generation || next_of(s) >= chunks_of(s)) return;
      if (!state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
      // The chunk is ours, and the job cannot change until done_ counts it: its fields are stable.
      const int64_t i = next_of(s);
      try {
        fn_(context_, chunk_begin(begin_, end_, chunks_, i), chunk_begin(begin_, end_, chunks_, i + 1));
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex_);
        if (!error_) error_ = std::current_exception();
      }
      done_.fetch_add(1, std::memory_order_acq_rel);
      s = state_.load(std::memory_order_acquire);
    }
  }

  std::atomic<int> threads_;
  std::mutex run_mutex_;  // one job at a time; held by the caller for the whole job
  std::vector<std::thread> workers_;

  std::atomic<uint64_t> state_{0};
  std::atomic<int64_t> done_{0};
  int64_t begin_ = 0, end_ = 0, chunks_ = 0;
  detail::ChunkFunction fn_ = nullptr;
  const void* context_ = nullptr;
  std::mutex error_mutex_;
  std::exception_ptr error_;

  std::mutex sleep_mutex_;
  std::condition_variable wake_;
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
};

Pool& pool() {
  // Never destroyed: workers may still be asleep on it when static destructors run at exit.
  static Pool* instance = new Pool();
  return *instance;
}

}  // namespace

int get_num_threads() { return pool().threads(); }

void set_num_threads(int n) {
  XG_CHECK(n >= 1 && n <= kMaxThreads, "set_num_threads: expected a thread count in [1, {}], got {}", kMaxThreads, n);
  XG_CHECK(!t_in_parallel, "set_num_threads: cannot change the thread count inside a parallel region");
  pool().set_threads(n);
}

int get_thread_num() { return t_thread_num; }

bool in_parallel_region() { return t_in_parallel; }

namespace detail {

int64_t chunk_count(int64_t size, int64_t grain_size) {
  if (t_in_parallel || size <= 0) return 1;
  const int threads = pool().threads();
  if (threads <= 1) return 1;
  const int64_t grain = std::max<int64_t>(grain_size, 1);
  const int64_t grains = size / grain;  // whole grains: a piece smaller than a grain is not worth a thread
  return std::max<int64_t>(1, std::min<int64_t>({grains, int64_t(threads), int64_t(0xffff)}));
}

void run_chunks(int64_t begin, int64_t end, int64_t chunks, ChunkFunction fn, const void* context) {
  if (chunks <= 1 || t_in_parallel) {
    fn(context, begin, end);
    return;
  }
  pool().run(begin, end, chunks, fn, context);
}

}  // namespace detail
}  // namespace xg
