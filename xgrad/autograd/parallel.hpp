#pragma once
/// Intra-op parallelism: the threads xgrad's kernels (matrix products, convolution patches, pooling,
/// elementwise maps, normalisation, optimizer updates) split their work over, with PyTorch's names:
/// xg::set_num_threads / xg::get_num_threads / xg::parallel_for (at::parallel_for's contract).
///
/// Why xgrad owns the threads, BLAS included: two pools on the same cores fight. OpenBLAS's workers
/// spin after each product while ours want the core, and OpenBLAS wakes its pool even for products
/// too small to gain from it. So xgrad keeps OpenBLAS single-threaded and splits large products into
/// row or column blocks itself (ops_linalg.cpp), one pool for everything.
///
/// Default thread count: OMP_NUM_THREADS if set (as in PyTorch), else OPENBLAS_NUM_THREADS, else the
/// number of online CPUs. The pool starts on the first parallel loop that is worth splitting, so a
/// process that never needs it stays single-threaded.
#include <cstdint>
#include <exception>

namespace xg {

/// Threads used by xgrad's kernels (>= 1), like torch::get_num_threads().
int get_num_threads();
/// Sets the number of threads used by xgrad's kernels (like torch::set_num_threads) and starts them;
/// n in [1, 1024] else xg::Error. If the threads cannot be started, xg::Error and the previous count
/// stays. Must not be called from inside a parallel region. Keeps BLAS single-threaded.
void set_num_threads(int n);
/// Index of the calling thread inside a parallel region (0 for the caller of parallel_for and outside).
int get_thread_num();
/// True while running inside a parallel_for body (nested loops then run serially on the calling thread).
bool in_parallel_region();

namespace detail {
using ChunkFunction = void (*)(const void* context, int64_t begin, int64_t end);
/// Runs fn over [begin, end) split into `chunks` contiguous pieces of (nearly) equal size, on the pool
/// and the calling thread. The split depends only on (begin, end, chunks), never on timing, so a
/// reduction over chunks is reproducible for a given thread count. Rethrows the first exception.
void run_chunks(int64_t begin, int64_t end, int64_t chunks, ChunkFunction fn, const void* context);
/// Number of pieces parallel_for uses for a range of `size` with grain `grain_size`.
int64_t chunk_count(int64_t size, int64_t grain_size);
}  // namespace detail

/// Calls f(chunk_begin, chunk_end) over [begin, end), in parallel when the range holds at least two
/// grains (grain_size: the smallest piece worth a thread, in iterations) and more than one thread is
/// set. f must be safe to call concurrently on disjoint ranges. Exceptions thrown by f are rethrown
/// on the calling thread (the first one; the other chunks still finish).
template <class F>
void parallel_for(int64_t begin, int64_t end, int64_t grain_size, const F& f) {
  if (end <= begin) return;
  const int64_t chunks = detail::chunk_count(end - begin, grain_size);
  if (chunks <= 1) {
    f(begin, end);
    return;
  }
  detail::run_chunks(
      begin, end, chunks, [](const void* context, int64_t b, int64_t e) { (*static_cast<const F*>(context))(b, e); }, &f);
}

/// Grain sizes used by xgrad's own kernels, in elements: a piece below this costs more to hand to
/// another thread (~1-5 us to wake it) than it saves.
inline constexpr int64_t kElementwiseGrain = 32768;

}  // namespace xg
