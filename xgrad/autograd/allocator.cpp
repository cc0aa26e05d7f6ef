#include "xgrad/autograd/allocator.hpp"

#include <array>
#include <cstdlib>
#include <mutex>
#include <vector>

#include "xgrad/autograd/error.hpp"

namespace xg {
namespace {

constexpr std::size_t kAlignment = 64;

// Size classes: 64-byte steps up to 256 bytes, then four per power of two, so a cached block wastes
// at most ~19%. Each class has an index, so the cache is a flat array of free lists (no hashing).
std::size_t size_class(std::size_t bytes) {
  if (bytes <= 256) return ((bytes + 63) / 64) * 64 + (bytes == 0 ? 64 : 0);
  std::size_t power = std::size_t{1} << (63 - __builtin_clzll(bytes - 1));  // largest 2^k < bytes
  std::size_t step = power / 4;
  return ((bytes + step - 1) / step) * step;
}

/// Index of a value returned by size_class: 0..3 for 64..256 bytes, then 4 per power of two.
std::size_t class_index(std::size_t rounded) {
  if (rounded <= 256) return rounded / 64 - 1;
  const int log2 = 63 - __builtin_clzll(rounded - 1);  // rounded in (2^log2, 2^(log2+1)]
  const std::size_t step = (std::size_t{1} << log2) / 4;
  return 4 + static_cast<std::size_t>(log2 - 8) * 4 + (rounded / step - 5);
}
constexpr std::size_t kClassCount = 4 + 56 * 4;

struct Cache {
  std::mutex mutex;
  std::array<std::vector<void*>, kClassCount> free_blocks;
  AllocatorStats stats;
  std::size_t limit = [] {
    if (const char* mb = std::getenv("XGRAD_CACHE_LIMIT_MB")) return std::size_t(std::atoll(mb)) << 20;
    return std::size_t{2} << 30;
  }();

  void release_all_locked() {
    for (std::vector<void*>& blocks : free_blocks) {
      for (void* block : blocks) std::free(block);
      blocks.clear();
    }
    stats.cached_bytes = 0;
  }
};

Cache& cache() {
  // Leaked on purpose: tensors in static storage may be destroyed after any other static.
  static Cache* instance = new Cache();
  return *instance;
}

// ---- small-object pool ------------------------------------------------------------------------
// Per-thread singly linked free lists, one per 16-byte size class. The lists live in a trivially
// destructible thread_local (no TLS guard on the hot path); a second thread_local with a destructor
// hands the blocks back to the system when the thread ends, after which that thread's frees go
// straight to operator delete. Under AddressSanitizer the pool is bypassed, so use-after-free of a
// tensor or node is still reported.
constexpr std::size_t kPoolGranule = 16;
constexpr std::size_t kPoolMaxBytes = 512;
constexpr std::size_t kPoolClasses = kPoolMaxBytes / kPoolGranule;
constexpr std::size_t kPoolBytesPerClass = std::size_t{1} << 20;  // at most 1 MiB kept per class and thread

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kPoolEnabled = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kPoolEnabled = false;
#else
constexpr bool kPoolEnabled = true;
#endif
#else
constexpr bool kPoolEnabled = true;
#endif

struct PoolBlock {
  PoolBlock* next;
};

struct ThreadPoolState {
  PoolBlock* heads[kPoolClasses];
  std::size_t counts[kPoolClasses];
  bool registered;  // the reaper below is armed
  bool finished;    // the thread is ending: no more pooling
};
thread_local ThreadPoolState pool_state{};

struct PoolReaper {
  ~PoolReaper() {
    ThreadPoolState& state = pool_state;
    state.finished = true;
    for (std::size_t c = 0; c < kPoolClasses; ++c) {
      while (PoolBlock* block = state.heads[c]) {
        state.heads[c] = block->next;
        ::operator delete(block);
      }
      state.counts[c] = 0;
    }
  }
  void arm() {}
};
thread_local PoolReaper pool_reaper;

}  // namespace

namespace detail {

void* pool_allocate(std::size_t bytes) {
  if (!kPoolEnabled || bytes == 0 || bytes > kPoolMaxBytes) return ::operator new(bytes);
  const std::size_t index = (bytes - 1) / kPoolGranule;
  ThreadPoolState& state = pool_state;
  if (PoolBlock* block = state.heads[index]) {
    state.heads[index] = block->next;
    --state.counts[index];
    return block;
  }
  if (!state.registered && !state.finished) {
    state.registered = true;
    pool_reaper.arm();  // first use on this thread: make sure its blocks are freed at thread exit
  }
  // Always the full class size, even after this thread's pool is gone: the block may be freed
  // into another thread's list of this class and handed out again there.
  return ::operator new((index + 1) * kPoolGranule);
}

void pool_deallocate(void* pointer, std::size_t bytes) noexcept {
  if (pointer == nullptr) return;
  if (!kPoolEnabled || bytes == 0 || bytes > kPoolMaxBytes) {
    ::operator delete(pointer);
    return;
  }
  const std::size_t index = (bytes - 1) / kPoolGranule;
  ThreadPoolState& state = pool_state;
  // Blocks are only kept on a thread whose reaper is armed (and not yet run); a thread that never
  // allocated from the pool arms it here on its first free.
  if (!state.finished && !state.registered) {
    state.registered = true;
    pool_reaper.arm();
  }
  if (state.finished || state.counts[index] * (index + 1) * kPoolGranule >= kPoolBytesPerClass) {
    ::operator delete(pointer);
    return;
  }
  auto* block = static_cast<PoolBlock*>(pointer);
  block->next = state.heads[index];
  state.heads[index] = block;
  ++state.counts[index];
}

void* cached_allocate(std::size_t bytes) {
  std::size_t rounded = size_class(bytes);
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    std::vector<void*>& blocks = c.free_blocks[class_index(rounded)];
    if (!blocks.empty()) {
      void* block = blocks.back();
      blocks.pop_back();
      c.stats.cached_bytes -= rounded;
      c.stats.allocated_bytes += rounded;
      ++c.stats.cache_hits;
      return block;
    }
    c.stats.allocated_bytes += rounded;
    ++c.stats.system_allocations;
  }
  void* block = std::aligned_alloc(kAlignment, rounded);
  if (block == nullptr) {
    // Give the cache back to the system and try once more before reporting out-of-memory.
    {
      std::lock_guard<std::mutex> lock(c.mutex);
      c.release_all_locked();
    }
    block = std::aligned_alloc(kAlignment, rounded);
    if (block == nullptr) {
      std::lock_guard<std::mutex> lock(c.mutex);
      c.stats.allocated_bytes -= rounded;
      return nullptr;  // the caller names the op and shape in its error
    }
  }
  return block;
}

void cached_deallocate(void* pointer, std::size_t bytes) noexcept {
  if (pointer == nullptr) return;
  std::size_t rounded = size_class(bytes);
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.stats.allocated_bytes -= rounded;
  if (c.stats.cached_bytes + rounded > c.limit) {
    std::free(pointer);
    return;
  }
  try {
    c.free_blocks[class_index(rounded)].push_back(pointer);
    c.stats.cached_bytes += rounded;
  } catch (...) {
    std::free(pointer);
  }
}

AllocationSite& allocation_site() noexcept {
  thread_local AllocationSite site;
  return site;
}

void throw_out_of_memory(std::size_t count, std::size_t item_bytes, const char* element) {
  const AllocationSite& site = allocation_site();
  const std::string op = site.op != nullptr ? fmt::format("{}: ", site.op) : std::string();
  // The shape is named only when it is the one being allocated (an op may allocate other buffers too).
  std::size_t shape_count = 1;
  if (site.shape != nullptr)
    for (int64_t size : *site.shape) shape_count *= static_cast<std::size_t>(size);
  const std::string what = site.shape != nullptr && shape_count == count ? fmt::format("shape [{}]", fmt::join(*site.shape, ", "))
                                                                          : fmt::format("{} elements", count);
  std::size_t bytes = 0;
  if (__builtin_mul_overflow(count, item_bytes, &bytes))
    XG_ERROR("{}cannot allocate a tensor of {} ({}): its byte size overflows", op, what, element);
  XG_ERROR("{}cannot allocate {} bytes for a tensor of {} ({}): out of memory", op, bytes, what, element);
}

}  // namespace detail

AllocatorStats allocator_stats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.stats;
}

void empty_cache() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.release_all_locked();
}

void set_cache_limit(std::size_t bytes) {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.limit = bytes;
}

}  // namespace xg
