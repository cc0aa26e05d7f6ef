#pragma once
/// xg::ArrayRef<T>: a non-owning view of a contiguous run of T, as c10::ArrayRef, so signatures that take
/// a list of sizes or indices accept braces, a std::vector, a std::array, a pointer and a length, or a
/// single value alike. It refers to the caller's storage: keep that alive while the ArrayRef is used
/// (a braced list lives until the end of the full expression that contains it).
#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <type_traits>
#include <vector>

#include "xgrad/autograd/error.hpp"

namespace xg {

template <class T>
class ArrayRef {
 public:
  using value_type = T;
  using iterator = const T*;
  using const_iterator = const T*;
  using size_type = size_t;

  constexpr ArrayRef() = default;
  /* implicit */ constexpr ArrayRef(const T& one) : data_(&one), size_(1) {}
  /// A bool is not a size or a dim: `x.var(false)` (libtorch's var(bool unbiased), which xgrad spells
  /// var({}, false)) or `x.sum(true)` must not quietly become dim {0} or {1}.
  template <class U, std::enable_if_t<std::is_same_v<U, bool> && !std::is_same_v<T, bool>, int> = 0>
  ArrayRef(U) = delete;
  constexpr ArrayRef(const T* data, size_t size) : data_(data), size_(size) {}
  constexpr ArrayRef(const T* begin, const T* end) : data_(begin), size_(static_cast<size_t>(end - begin)) {}
  template <class A>
  /* implicit */ ArrayRef(const std::vector<T, A>& v) : data_(v.data()), size_(v.size()) {}
  template <size_t N>
  /* implicit */ constexpr ArrayRef(const std::array<T, N>& a) : data_(a.data()), size_(N) {}
  template <size_t N>
  /* implicit */ constexpr ArrayRef(const T (&a)[N]) : data_(a), size_(N) {}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winit-list-lifetime"  // by design: the list outlives the full expression
#endif
  /* implicit */ constexpr ArrayRef(std::initializer_list<T> list)
      : data_(list.begin() == list.end() ? nullptr : list.begin()), size_(list.size()) {}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

  constexpr const T* data() const { return data_; }
  constexpr size_t size() const { return size_; }
  constexpr bool empty() const { return size_ == 0; }
  constexpr const T* begin() const { return data_; }
  constexpr const T* end() const { return data_ + size_; }
  constexpr const T& operator[](size_t i) const { return data_[i]; }
  /// Element i, checked: xg::Error naming the index and the size when out of range.
  const T& at(size_t i) const {
    XG_CHECK(i < size_, "ArrayRef::at: index {} is out of range for {} elements", i, size_);
    return data_[i];
  }
  const T& front() const { return at(0); }
  const T& back() const {
    XG_CHECK(size_ > 0, "ArrayRef::back: the array is empty");
    return data_[size_ - 1];
  }
  /// Elements [start, start + n), checked.
  ArrayRef slice(size_t start, size_t n) const {
    XG_CHECK(start <= size_ && n <= size_ - start, "ArrayRef::slice: [{}, {}) is out of range for {} elements", start, start + n, size_);
    return ArrayRef(data_ + start, n);
  }
  ArrayRef slice(size_t start) const { return slice(start, start <= size_ ? size_ - start : 0); }
  bool equals(ArrayRef other) const {
    if (size_ != other.size_) return false;
    for (size_t i = 0; i < size_; ++i)
      if (!(data_[i] == other.data_[i])) return false;
    return true;
  }
  std::vector<T> vec() const { return std::vector<T>(begin(), end()); }
  operator std::vector<T>() const { return vec(); }

 private:
  const T* data_ = nullptr;
  size_t size_ = 0;
};

template <class T>
bool operator==(ArrayRef<T> a, ArrayRef<T> b) { return a.equals(b); }
template <class T>
bool operator!=(ArrayRef<T> a, ArrayRef<T> b) { return !a.equals(b); }

using IntArrayRef = ArrayRef<int64_t>;

}  // namespace xg
