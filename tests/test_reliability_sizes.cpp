// Sizes at the edges (issue 13): shapes whose element or byte count overflows, size formulas of conv,
// pooling, pad, cat and slice fed huge values, allocations the system cannot satisfy, thread counts
// beyond reason, and files that are directories. Each must be an xg::Error naming the op and what was
// given -- never a wrapped count (a small buffer, then out-of-bounds access), a segfault, a bare
// std::bad_alloc or std::system_error. The expected sizes are worked out by hand in the comments.
#include <catch2/catch.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include <xgrad/xgrad.hpp>

#include "test_files.hpp"

using namespace xg;
using Catch::Matchers::Contains;
namespace F = xg::nn::functional;

namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kAddressSanitizer = true;
#else
constexpr bool kAddressSanitizer = false;
#endif
#else
constexpr bool kAddressSanitizer = false;
#endif

/// The message of the xg::Error that call throws, or a marker (which no expected message contains)
/// when it throws nothing or something else: the checks of a test case all run and show what happened.
template <class F>
std::string error_of(F&& call) {
  try {
    call();
  } catch (const Error& error) {
    return error.what();
  } catch (const std::exception& error) {
    return std::string("<<not an xg::Error>> ") + error.what();
  }
  return "<<no exception>>";
}

}  // namespace

TEST_CASE("sizes: factories reject shapes whose element count overflows int64", "[errors][sizes]") {
  // 2^40 * 2^40 = 2^80: wrapped to 0 it was accepted with numel() == 0.
  CHECK_THAT(error_of([] { zeros({int64_t{1} << 40, int64_t{1} << 40}); }),
             Contains("zeros") && Contains("[1099511627776, 1099511627776]") && Contains("overflows int64"));
  // (2^62 + 1) * 4 = 2^64 + 4 wraps to 4: four floats were allocated and sum({0}) read past them.
  CHECK_THAT(error_of([] { ones({(int64_t{1} << 62) + 1, 4}).sum({0}); }), Contains("ones") && Contains("[4611686018427387905, 4]"));
  // eye(2^32): 2^64 elements wrapped to 0, then the diagonal was written: a segfault.
  CHECK_THAT(error_of([] { eye(int64_t{1} << 32); }), Contains("eye") && Contains("[4294967296, 4294967296]"));
  CHECK_THAT(error_of([] { full({int64_t{1} << 32, int64_t{1} << 32}, 1.0); }), Contains("full"));
  CHECK_THAT(error_of([] { rand({int64_t{1} << 32, int64_t{1} << 32}); }), Contains("rand"));
  CHECK_THAT(error_of([] { randint(0, 2, {int64_t{1} << 32, int64_t{1} << 32}); }), Contains("randint"));
  // 4 values "fill" [2^62 + 1, 4] once its count wraps to 4.
  CHECK_THAT(error_of([] { tensor({1, 2, 3, 4}, {(int64_t{1} << 62) + 1, 4}); }), Contains("tensor") && Contains("overflows int64"));
  // A 0 makes the count 0, but the strides of [0, 2^32, 2^32] (2^64, 2^32, 1) still overflow.
  CHECK_THAT(error_of([] { zeros({0, int64_t{1} << 32, int64_t{1} << 32}); }), Contains("zeros") && Contains("overflows int64"));
  // Zeros with sizes whose product fits stay valid (as in PyTorch).
  CHECK(zeros({0, int64_t{1} << 40}).numel() == 0);
  CHECK(empty({int64_t{1} << 31, 0, int64_t{1} << 31}).numel() == 0);
  CHECK_THAT(error_of([] { zeros({2, -3}); }), Contains("zeros") && Contains("negative dimension -3"));
}

TEST_CASE("sizes: byte counts beyond the address space are errors, not a wrapped allocation", "[errors][sizes]") {
  // 2^61 float64 elements = 2^64 bytes: the byte count wrapped to 0.
  CHECK_THAT(error_of([] { zeros({int64_t{1} << 61}, kFloat64); }), Contains("zeros") && Contains("[2305843009213693952]") && Contains("8 bytes"));
  // 2^60 * 8 = 2^63 bytes > PTRDIFF_MAX; 2^62 int64 one-hot columns likewise.
  CHECK_THAT(error_of([] { empty({int64_t{1} << 60}, kInt64); }), Contains("empty") && Contains("too large"));
  CHECK_THAT(error_of([] { one_hot(tensor({0}, kInt64), int64_t{1} << 62); }), Contains("one_hot") && Contains("too large"));
  CHECK_THAT(error_of([] { randperm(int64_t{1} << 62); }), Contains("randperm") && Contains("too large"));
}

TEST_CASE("sizes: reshape, view and expand reject impossible shapes", "[errors][sizes]") {
  // [2^62 + 1, 4] has 2^64 + 4 elements, not 4.
  Tensor four = tensor({1, 2, 3, 4});
  CHECK_THAT(error_of([&] { four.reshape({(int64_t{1} << 62) + 1, 4}); }), Contains("reshape") && Contains("4611686018427387905"));
  CHECK_THAT(error_of([&] { four.view({(int64_t{1} << 62) + 1, 4}); }), Contains("view"));
  // With -1: the known sizes (2^62 + 1) * 4 wrapped to 4, which divides 8, so -1 became 2.
  Tensor eight = arange(8);
  CHECK_THAT(error_of([&] { eight.reshape({(int64_t{1} << 62) + 1, 4, -1}); }), Contains("reshape") && Contains("overflows int64"));
  CHECK(eight.reshape({2, -1}).shape() == Shape{2, 4});
  // expand to 2^40 x 2^40 = 2^80 elements wrapped to 0: an "empty" tensor of that shape came back.
  Tensor one = ones({1, 1});
  CHECK_THAT(error_of([&] { one.expand({int64_t{1} << 40, int64_t{1} << 40}); }), Contains("expand") && Contains("overflows int64"));
  // Broadcasting [2^32, 1, 0] with [1, 2^32, 0]: strides 2^64 * 0 ... overflow even with no elements.
  Tensor tall = zeros({int64_t{1} << 32, 1, 0}), wide = zeros({1, int64_t{1} << 32, 0});
  CHECK_THAT(error_of([&] { add(tall, wide); }), Contains("add") && Contains("[4294967296, 4294967296, 0]"));
}

TEST_CASE("sizes: cat, pad, arange and slice compute their sizes without overflow", "[errors][sizes]") {
  // 3 * 2^62 along dim 0 overflows int64.
  Tensor part = zeros({int64_t{1} << 62, 0});
  CHECK_THAT(error_of([&] { cat({part, part, part}); }), Contains("cat") && Contains("overflows int64"));
  CHECK(cat({part, part}, 1).shape() == Shape{int64_t{1} << 62, 0});
  // 1 + (2^63 - 2) + 1 = 2^63 overflows.
  Tensor x = tensor({5.0});
  CHECK_THAT(error_of([&] { pad(x, {kMax - 1, 1}); }), Contains("pad") && Contains("overflows int64"));
  CHECK_THAT(error_of([&] { pad(x, {std::numeric_limits<int64_t>::min(), 0}); }), Contains("pad"));
  // Cropping far beyond the input (left -2^62, right +2^62) leaves 1 element filled with the value.
  Tensor cropped = pad(x, {-(int64_t{1} << 62), int64_t{1} << 62}, 7.0);
  REQUIRE(cropped.shape() == Shape{1});
  CHECK(cropped.item<float>() == 7.0f);
  // [0, 3) cropped by 1 on the left and padded by 2 on the right: [2, 3, 0, 0] of [1, 2, 3].
  CHECK(equal(pad(tensor({1, 2, 3}), {-1, 2}), tensor({2, 3, 0, 0})));
  // (1e19 - 0) / 1 elements: more than int64 can count (the cast was undefined behaviour).
  CHECK_THAT(error_of([] { arange(0, 1e19); }), Contains("arange") && Contains("elements"));
  CHECK_THAT(error_of([] { arange(-1e308, 1e308, 1e-300); }), Contains("arange"));
  // slice [0, 3) with step 2^63 - 1 takes element 0 only; (3 + step - 1) / step overflowed.
  Tensor abc = tensor({10, 20, 30});
  Tensor first = slice(abc, 0, 0, 3, kMax);
  REQUIRE(first.shape() == Shape{1});
  CHECK(first.item<float>() == 10.0f);
  // With a gradient: d/dx sum(slice) = [1, 0, 0].
  Tensor leaf = tensor({1, 2, 3}, {}, kFloat64).requires_grad_();
  slice(leaf, 0, 0, std::nullopt, kMax).sum().backward();
  CHECK(equal(leaf.grad(), tensor({1, 0, 0}, {}, kFloat64)));
}

TEST_CASE("sizes: conv, unfold, fold and pooling output sizes do not overflow", "[errors][sizes]") {
  Tensor image = ones({1, 1, 3, 3});
  Tensor kernel = ones({1, 1, 1, 1});
  // 3 + 2 * 2^62 overflows.
  CHECK_THAT(error_of([&] { F::conv2d(image, kernel, {}, 1, int64_t{1} << 62); }), Contains("conv2d") && Contains("overflows int64"));
  // dilation 2^62 * (3 - 1) = 2^63 overflows.
  Tensor kernel3 = ones({1, 1, 3, 3});
  CHECK_THAT(error_of([&] { F::conv2d(image, kernel3, {}, 1, 0, int64_t{1} << 62); }), Contains("conv2d") && Contains("overflows int64"));
  // groups * in_channels/groups: 0 output channels allow any groups, 2^62 * 4 overflows.
  CHECK_THAT(error_of([&] { F::conv2d(ones({1, 4, 3, 3}), ones({0, 4, 1, 1}), {}, 1, 0, 1, int64_t{1} << 62); }),
             Contains("conv2d") && Contains("overflows int64"));
  // fold's kernel area 2^32 * 2^32 wrapped to 0, then rows % 0: a division by zero.
  CHECK_THAT(error_of([] { F::col2im(ones({1, 4, 1}), {2, 2}, {int64_t{1} << 32, int64_t{1} << 32}); }),
             Contains("col2im") && Contains("overflows int64"));
  CHECK_THAT(error_of([&] { F::im2col(image, {1, 1}, 1, int64_t{1} << 62); }), Contains("im2col") && Contains("overflows int64"));
  // pooling: dilation 2^62 * (3 - 1) overflows; ceil_mode adds stride - 1 = 2^63 - 2 to the span.
  CHECK_THAT(error_of([&] { F::max_pool2d(image, 3, 1, 1, int64_t{1} << 62); }), Contains("max_pool2d") && Contains("overflows int64"));
  CHECK_THAT(error_of([&] { F::avg_pool2d(image, 3, kMax, 1, true); }), Contains("avg_pool2d") && Contains("overflows int64"));
  // A large but valid stride still works: one window at the top-left corner, sum 9 / 9 = 1.
  CHECK(F::avg_pool2d(image, 3, int64_t{1} << 62).item<float>() == 1.0f);
}

TEST_CASE("sizes: adaptive pooling rejects output sizes whose count overflows", "[errors][sizes]") {
  // 2^62 x 2^62 outputs per plane: the window loops ran for ever before the buffer's size wrapped.
  CHECK_THAT(error_of([] { F::adaptive_avg_pool2d(ones({1, 1, 3, 3}), {int64_t{1} << 62, int64_t{1} << 62}); }),
             Contains("adaptive_avg_pool2d") && Contains("overflows int64"));
}

TEST_CASE("sizes: an allocation the system cannot satisfy is an xg::Error naming op, bytes, shape and dtype", "[errors][sizes]") {
  if (kAddressSanitizer) return;  // AddressSanitizer aborts on such a request instead of returning null
  Tensor one = ones({1});
  const std::size_t allocated_before = allocator_stats().allocated_bytes;
  // 2^50 float32 = 2^52 bytes (4 PiB): more than any machine's address space.
  CHECK_THAT(error_of([] { zeros({int64_t{1} << 50}); }),
             Contains("zeros: cannot allocate 4503599627370496 bytes for a tensor of shape [1125899906842624] (float32): out of memory"));
  CHECK_THAT(error_of([] { ones({int64_t{1} << 20, int64_t{1} << 30}, kFloat64); }),
             Contains("ones: cannot allocate 9007199254740992 bytes") && Contains("[1048576, 1073741824] (float64)"));
  // expand [1] to [2^50] is a view (stride 0, no memory); materialising it needs 2^52 bytes.
  CHECK(one.expand({int64_t{1} << 50}).numel() == int64_t{1} << 50);
  CHECK_THAT(error_of([&] { one.expand({int64_t{1} << 50}).contiguous(); }),
             Contains("clone: cannot allocate 4503599627370496 bytes for a tensor of shape [1125899906842624] (float32)"));
  CHECK_THAT(error_of([&] { pad(one, {0, int64_t{1} << 50}); }), Contains("pad: cannot allocate") && Contains("out of memory"));
  // The failed requests are not counted as handed out, and the allocator still works.
  CHECK(allocator_stats().allocated_bytes == allocated_before);
  CHECK(zeros({3}).sum().item<float>() == 0.0f);
}

TEST_CASE("sizes: set_num_threads bounds the count and survives failing to start threads", "[errors][sizes][parallel]") {
  const int saved = get_num_threads();
  // PyTorch accepts any positive count; 100000 started 30,000 threads, then std::system_error.
  CHECK_THAT(error_of([] { set_num_threads(100000); }), Contains("set_num_threads") && Contains("100000") && Contains("1024"));
  CHECK(get_num_threads() == saved);
  set_num_threads(2);
  CHECK(get_num_threads() == 2);
  if (!kAddressSanitizer) {
    // Leave room for ~4 more thread stacks (8 MiB each by default): 63 cannot start.
    std::ifstream statm("/proc/self/statm");
    std::size_t pages = 0;
    statm >> pages;
    REQUIRE(pages > 0);
    rlimit old{};
    REQUIRE(getrlimit(RLIMIT_AS, &old) == 0);
    rlimit tight = old;
    tight.rlim_cur = pages * static_cast<std::size_t>(sysconf(_SC_PAGESIZE)) + (std::size_t{32} << 20);
    REQUIRE(setrlimit(RLIMIT_AS, &tight) == 0);
    std::string message;
    try {
      set_num_threads(64);
    } catch (const Error& error) {
      message = error.what();
    } catch (...) {
      message = "<<not an xg::Error>>";
    }
    setrlimit(RLIMIT_AS, &old);
    CHECK_THAT(message, Contains("set_num_threads: could not start 64 threads") && Contains("keeping 2 thread(s)"));
    CHECK(get_num_threads() == 2);
  }
  // The pool still runs jobs on both threads: the sum of 0..99999 = 99999 * 100000 / 2.
  std::vector<int64_t> partial(2, 0);
  parallel_for(0, 100000, 1000, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) partial[get_thread_num()] += i;
  });
  CHECK(partial[0] + partial[1] == int64_t{99999} * 100000 / 2);
  set_num_threads(saved);
}

TEST_CASE("sizes: data files that are directories or devices, and MNIST labels of the wrong type", "[errors][sizes][data]") {
  test::TempDir dir("xgrad_sizes_files");
  const std::string folder = dir.file("a_folder.idx");
  std::filesystem::create_directories(folder);
  // A directory opened as a stream "reads" with a size of 2^63 - 1: a std::bad_alloc.
  CHECK_THAT(error_of([&] { data::read_idx(folder); }), Contains("read_idx") && Contains(folder) && Contains("is a directory"));
  // As a CSV file it read as empty.
  CHECK_THAT(error_of([&] { data::CSVDataset csv(folder); }), Contains("CSVDataset") && Contains(folder) && Contains("is a directory"));
  CHECK_THAT(error_of([] { data::CSVDataset csv("/dev/null"); }), Contains("CSVDataset") && Contains("not a regular file"));
  CHECK_THAT(error_of([] { data::read_idx("/dev/null"); }), Contains("read_idx") && Contains("not a regular file"));
  // MNIST whose labels are float32 (idx type 0x0D): the message says what was expected and given.
  const std::string root = dir.file("mnist");
  std::filesystem::create_directories(root);
  data::write_idx_ubyte(root + "/train-images-idx3-ubyte", {2, 2, 2}, std::vector<uint8_t>(8, 1));
  const std::vector<uint8_t> float_labels{0, 0, 0x0D, 1, 0, 0, 0, 2, 0x3f, 0x80, 0, 0, 0, 0, 0, 0};  // [1.0f, 0.0f]
  test::write_bytes(root + "/train-labels-idx1-ubyte", std::string(float_labels.begin(), float_labels.end()));
  CHECK_THAT(error_of([&] { data::MNIST mnist(root, true); }),
             Contains("train-labels-idx1-ubyte") && Contains("unsigned byte") && Contains("float32") && Contains("0x0d"));
}

TEST_CASE("sizes: random_split rejects lengths whose sum overflows", "[errors][sizes][data]") {
  // (2^63 - 1) + (2^63 - 1) + 4 wraps to 2, the dataset's size: the subsets then indexed far outside it.
  auto dataset = std::make_shared<data::TensorDataset>(tensor({1, 2}), tensor({0, 1}, kInt64));
  CHECK_THAT(error_of([&] { data::random_split(dataset, {kMax, kMax, 4}, 0); }), Contains("random_split") && Contains("overflows int64"));
  CHECK(data::random_split(dataset, {1, 1}, 0).size() == 2);
}

TEST_CASE("sizes: write_idx_ubyte rejects sizes that do not fit the header or whose product wraps", "[errors][sizes][data]") {
  test::TempDir dir("xgrad_sizes_write");
  // 2^32 does not fit the u32 size field of the header: [2^32, 0] was written as [0, 0].
  CHECK_THAT(error_of([&] { data::write_idx_ubyte(dir.file("big.idx"), {int64_t{1} << 32, 0}, {}); }),
             Contains("write_idx_ubyte") && Contains("[4294967296, 0]"));
  // 65536 * 65536 * 65536 * 65536 = 2^64 wraps to 0, which "matched" no values.
  CHECK_THAT(error_of([&] { data::write_idx_ubyte(dir.file("wrap.idx"), {65536, 65536, 65536, 65536}, {}); }),
             Contains("write_idx_ubyte") && Contains("overflows int64"));
  // [-1, 0] has 0 elements by the product, and -1 was written as 0xffffffff.
  CHECK_THAT(error_of([&] { data::write_idx_ubyte(dir.file("neg.idx"), {-1, 0}, {}); }), Contains("write_idx_ubyte") && Contains("[-1, 0]"));
  // A valid file still round-trips: [2, 3] of 0..5.
  data::write_idx_ubyte(dir.file("ok.idx"), {2, 3}, {0, 1, 2, 3, 4, 5});
  CHECK(data::read_idx(dir.file("ok.idx")).shape == std::vector<int64_t>{2, 3});
}
