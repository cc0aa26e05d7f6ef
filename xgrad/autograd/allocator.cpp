#include "xgrad/autograd/allocator.hpp"

#include <cstdlib>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace xg {
namespace {

constexpr std::size_t kAlignment = 64;

// Size classes: four per power of two above 256 bytes, so a cached block wastes at most ~19%.
std::size_t size_class(std::size_t bytes) {
  if (bytes <= 256) return ((bytes + 63) / 64) * 64 + (bytes == 0 ? 64 : 0);
  std::size_t power = std::size_t{1} << (63 - __builtin_clzll(bytes - 1));  // largest 2^k < bytes
  std::size_t step = power / 4;
  return ((bytes + step - 1) / step) * step;
}

struct Cache {
  std::mutex mutex;
  std::unordered_map<std::size_t, std::vector<void*>> free_blocks;
  AllocatorStats stats;
  std::size_t limit = [] {
    if (const char* mb = std::getenv("XGRAD_CACHE_LIMIT_MB")) return std::size_t(std::atoll(mb)) << 20;
    return std::size_t{2} << 30;
  }();

  void release_all_locked() {
    for (auto& [size, blocks] : free_blocks) {
      for (void* block : blocks) std::free(block);
      stats.cached_bytes -= size * blocks.size();
      blocks.clear();
    }
  }
};

Cache& cache() {
  // Leaked on purpose: tensors in static storage may be destroyed after any other static.
  static Cache* instance = new Cache();
  return *instance;
}

}  // namespace

namespace detail {

void* cached_allocate(std::size_t bytes) {
  std::size_t rounded = size_class(bytes);
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    auto it = c.free_blocks.find(rounded);
    if (it != c.free_blocks.end() && !it->second.empty()) {
      void* block = it->second.back();
      it->second.pop_back();
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
      throw std::bad_alloc();
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
    c.free_blocks[rounded].push_back(pointer);
    c.stats.cached_bytes += rounded;
  } catch (...) {
    std::free(pointer);
  }
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
