// SmallVector (the container behind every tensor's sizes and strides): inline up to N elements, heap
// beyond; every member checked against std::vector doing the same thing, across the inline/heap edge.
#include <catch2/catch.hpp>

#include <numeric>
#include <vector>

#include "xgrad/autograd/small_vector.hpp"

namespace {

using Small = xg::SmallVector<int64_t, 4>;

std::vector<int64_t> as_vector(const Small& v) { return {v.begin(), v.end()}; }

}  // namespace

TEST_CASE("SmallVector: construction, inline and on the heap", "[small_vector]") {
  CHECK(Small().empty());
  CHECK(as_vector(Small(3)) == std::vector<int64_t>{0, 0, 0});
  CHECK(as_vector(Small(6, 7)) == std::vector<int64_t>(6, 7));
  CHECK(as_vector(Small{1, 2, 3, 4, 5}) == std::vector<int64_t>{1, 2, 3, 4, 5});
  std::vector<int64_t> source(9);
  std::iota(source.begin(), source.end(), 10);
  Small from_range(source.begin(), source.end());
  CHECK(as_vector(from_range) == source);
  CHECK(from_range.capacity() >= 9);
  CHECK(Small(2, 1) == Small{1, 1});
  CHECK(Small{1, 2} != Small{1, 2, 3});
  CHECK(Small{1, 2} != Small{1, 3});
}

TEST_CASE("SmallVector: copies and moves keep their elements in both storage modes", "[small_vector]") {
  for (size_t n : {0, 2, 4, 5, 11}) {
    std::vector<int64_t> expected(n);
    std::iota(expected.begin(), expected.end(), 1);
    Small original(expected.begin(), expected.end());
    Small copy(original);
    CHECK(as_vector(copy) == expected);
    if (n > 0) copy[0] = -1;  // a copy is independent of its source
    CHECK(as_vector(original) == expected);
    Small assigned{9, 9, 9, 9, 9, 9};
    assigned = original;
    CHECK(as_vector(assigned) == expected);
    Small moved(std::move(assigned));
    CHECK(as_vector(moved) == expected);
    CHECK(assigned.empty());  // NOLINT(bugprone-use-after-move): a moved-from vector is empty and usable
    assigned.push_back(3);
    CHECK(as_vector(assigned) == std::vector<int64_t>{3});
    Small target{1};
    target = std::move(moved);
    CHECK(as_vector(target) == expected);
    target = target;  // self-assignment keeps the elements
    CHECK(as_vector(target) == expected);
  }
}

TEST_CASE("SmallVector: push_back, insert, erase and resize match std::vector", "[small_vector]") {
  Small v;
  std::vector<int64_t> w;
  for (int64_t i = 0; i < 12; ++i) {
    v.push_back(i);
    w.push_back(i);
  }
  CHECK(as_vector(v) == w);
  v.insert(v.begin() + 3, 100);
  w.insert(w.begin() + 3, 100);
  v.insert(v.end(), 101);
  w.insert(w.end(), 101);
  CHECK(as_vector(v) == w);
  v.erase(v.begin());
  w.erase(w.begin());
  v.erase(v.begin() + 2, v.begin() + 5);
  w.erase(w.begin() + 2, w.begin() + 5);
  CHECK(as_vector(v) == w);
  v.resize(3);
  w.resize(3);
  CHECK(as_vector(v) == w);
  v.resize(6);
  w.resize(6);
  CHECK(as_vector(v) == w);  // new elements are zero
  CHECK(v.back() == 0);
  CHECK(v.front() == w.front());

  Small inline_only{1, 2, 3};
  inline_only.insert(inline_only.begin(), inline_only[2]);  // an element of the vector itself
  CHECK(as_vector(inline_only) == std::vector<int64_t>{3, 1, 2, 3});
  inline_only.insert(inline_only.begin() + 1, inline_only[3]);  // ... while growing to the heap
  CHECK(as_vector(inline_only) == std::vector<int64_t>{3, 3, 1, 2, 3});
  inline_only.push_back(inline_only[0]);
  CHECK(as_vector(inline_only) == std::vector<int64_t>{3, 3, 1, 2, 3, 3});
  inline_only.assign(2, 8);
  CHECK(as_vector(inline_only) == std::vector<int64_t>{8, 8});
  inline_only.resize_for_overwrite(4);
  CHECK(inline_only.size() == 4);
  CHECK(std::vector<int64_t>(inline_only.rbegin(), inline_only.rend())[3] == 8);
}
