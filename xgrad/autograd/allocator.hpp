#pragma once
/// A caching allocator behind every tensor buffer. Freed blocks are kept in size classes and handed
/// out again, so a training loop reaches a steady state that maps no new pages (first touch of fresh
/// memory costs ~10 us per 4 KiB page on our machines, more than most kernels).
#include <cstddef>
#include <cstdint>
#include <limits>
#include <new>
#include <type_traits>
#include <vector>

namespace xg {

namespace detail {
/// A block of at least `bytes` bytes, or nullptr when the system has none (after emptying the cache).
void* cached_allocate(std::size_t bytes);
void cached_deallocate(void* pointer, std::size_t bytes) noexcept;
/// Small fixed-size objects (tensor handles, storages, tape nodes and their edge lists): per-thread
/// free lists by 16-byte size class, so the tape's many same-sized allocations neither go through
/// malloc's locked paths in a multi-threaded process nor overflow its small per-thread cache.
/// A block may be freed on any thread. Sizes above 512 bytes go to operator new.
void* pool_allocate(std::size_t bytes);
void pool_deallocate(void* pointer, std::size_t bytes) noexcept;

/// What this thread is allocating a tensor buffer for, so that running out of memory can be reported
/// as "<op>: cannot allocate N bytes for a tensor of shape [...] (dtype)". A plain thread_local (no
/// constructor): setting it costs two stores.
struct AllocationSite {
  const char* op = nullptr;
  const std::vector<int64_t>* shape = nullptr;
};
AllocationSite& allocation_site() noexcept;

/// Names the op (and, when known, the shape) of the allocations made on this thread while it lives.
class AllocationScope {
 public:
  explicit AllocationScope(const char* op, const std::vector<int64_t>* shape = nullptr) noexcept : saved_(allocation_site()) {
    AllocationSite& site = allocation_site();
    if (op != nullptr) site.op = op;
    site.shape = shape;
  }
  ~AllocationScope() { allocation_site() = saved_; }
  AllocationScope(const AllocationScope&) = delete;
  AllocationScope& operator=(const AllocationScope&) = delete;

 private:
  AllocationSite saved_;
};

/// Throws xg::Error "<op>: cannot allocate <bytes> bytes for a tensor of shape [...] (<dtype>): out of
/// memory", with the op and shape of this thread's AllocationSite (bytes == 0: the size overflowed).
[[noreturn]] void throw_out_of_memory(std::size_t count, std::size_t item_bytes, const char* element);

template <class T>
constexpr const char* element_name() {
  if constexpr (std::is_same_v<T, float>) return "float32";
  else if constexpr (std::is_same_v<T, double>) return "float64";
  else if constexpr (std::is_same_v<T, int64_t>) return "int64";
  else return "bytes";
}
}  // namespace detail

/// Statistics of the caching allocator (bytes currently handed out, bytes held in the cache, and
/// how many requests had to go to the system).
struct AllocatorStats {
  std::size_t allocated_bytes = 0;
  std::size_t cached_bytes = 0;
  std::size_t system_allocations = 0;
  std::size_t cache_hits = 0;
};
AllocatorStats allocator_stats();
/// Returns every cached (unused) block to the system.
void empty_cache();
/// Upper bound on bytes kept in the cache (default 2 GiB, or XGRAD_CACHE_LIMIT_MB from the environment).
void set_cache_limit(std::size_t bytes);

/// std::allocator-compatible front end used by xg::Array<T>.
template <class T>
struct CachingAllocator {
  using value_type = T;
  CachingAllocator() noexcept = default;
  template <class U>
  CachingAllocator(const CachingAllocator<U>&) noexcept {}
  /// Out of memory (or a count whose byte size overflows) is an xg::Error naming the op and shape.
  T* allocate(std::size_t n) {
    if (n > std::numeric_limits<std::ptrdiff_t>::max() / sizeof(T)) detail::throw_out_of_memory(n, sizeof(T), detail::element_name<T>());
    void* block = detail::cached_allocate(n * sizeof(T));
    if (block == nullptr) detail::throw_out_of_memory(n, sizeof(T), detail::element_name<T>());
    return static_cast<T*>(block);
  }
  void deallocate(T* pointer, std::size_t n) noexcept { detail::cached_deallocate(pointer, n * sizeof(T)); }
  template <class U>
  struct rebind {
    using other = CachingAllocator<U>;
  };
  friend bool operator==(const CachingAllocator&, const CachingAllocator&) { return true; }
  friend bool operator!=(const CachingAllocator&, const CachingAllocator&) { return false; }
};

/// std::allocator-compatible front end of the small-object pool (for allocate_shared and the tape's
/// small vectors). Stateless: any instance frees what another allocated.
template <class T>
struct PoolAllocator {
  static_assert(alignof(T) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__, "PoolAllocator: over-aligned types are not pooled");
  using value_type = T;
  PoolAllocator() noexcept = default;
  template <class U>
  PoolAllocator(const PoolAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) { return static_cast<T*>(detail::pool_allocate(n * sizeof(T))); }
  void deallocate(T* pointer, std::size_t n) noexcept { detail::pool_deallocate(pointer, n * sizeof(T)); }
  template <class U>
  struct rebind {
    using other = PoolAllocator<U>;
  };
  friend bool operator==(const PoolAllocator&, const PoolAllocator&) { return true; }
  friend bool operator!=(const PoolAllocator&, const PoolAllocator&) { return false; }
};

}  // namespace xg
