#pragma once
/// A caching allocator behind every tensor buffer. Freed blocks are kept in size classes and handed
/// out again, so a training loop reaches a steady state that maps no new pages (first touch of fresh
/// memory costs ~10 us per 4 KiB page on our machines, more than most kernels).
#include <cstddef>
#include <cstdint>
#include <new>

namespace xg {

namespace detail {
void* cached_allocate(std::size_t bytes);
void cached_deallocate(void* pointer, std::size_t bytes) noexcept;
/// Small fixed-size objects (tensor handles, storages, tape nodes and their edge lists): per-thread
/// free lists by 16-byte size class, so the tape's many same-sized allocations neither go through
/// malloc's locked paths in a multi-threaded process nor overflow its small per-thread cache.
/// A block may be freed on any thread. Sizes above 512 bytes go to operator new.
void* pool_allocate(std::size_t bytes);
void pool_deallocate(void* pointer, std::size_t bytes) noexcept;
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
  T* allocate(std::size_t n) { return static_cast<T*>(detail::cached_allocate(n * sizeof(T))); }
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
