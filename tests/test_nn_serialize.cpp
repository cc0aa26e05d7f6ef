// safetensors checkpoints: round trips, the exact byte format, files written by other tools,
// every kind of corrupt file, atomic writes, and loading into modules (strict, dtype conversion).
#include <catch2/catch.hpp>

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <xgrad/nn/serialize.hpp>

#include "test_files.hpp"

using namespace xg;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

using xg::test::read_bytes;
using xg::test::TempDir;
using xg::test::write_bytes;

std::string little_endian(uint64_t bits, int bytes) {
  std::string out;
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
  return out;
}
std::string le_u64(uint64_t value) { return little_endian(value, 8); }
std::string le_f32(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  return little_endian(bits, 4);
}
std::string le_f64(double value) {
  uint64_t bits;
  std::memcpy(&bits, &value, 8);
  return little_endian(bits, 8);
}
std::string le_i64(int64_t value) { return little_endian(static_cast<uint64_t>(value), 8); }

/// A safetensors file built by hand: length prefix, header text as given (no padding), data.
std::string make_file(const std::string& header, const std::string& data) { return le_u64(header.size()) + header + data; }

/// Loading path must throw xg::Error naming the file and containing phrase.
void check_load_fails(const std::string& path, const std::string& phrase) {
  INFO("expected an error containing: " << phrase);
  try {
    nn::load_safetensors(path);
    FAIL("the corrupt file loaded");
  } catch (const Error& error) {
    std::string message = error.what();
    CHECK_THAT(message, Contains(path));
    CHECK_THAT(message, Contains(phrase));
  }
}

/// Writes bytes to path, then expects loading to fail with phrase.
void check_bytes_fail(const std::string& path, const std::string& bytes, const std::string& phrase) {
  write_bytes(path, bytes);
  check_load_fails(path, phrase);
}

bool same_state(const nn::OrderedDict<Tensor>& a, const nn::OrderedDict<Tensor>& b) {
  if (a.keys() != b.keys()) return false;
  for (const auto& [name, tensor] : a)
    if (!equal(tensor, b[name])) return false;
  return true;
}

nn::OrderedDict<Tensor> snapshot(const nn::Module& module) {
  nn::OrderedDict<Tensor> copy;
  for (const auto& [name, tensor] : module.state_dict()) copy.insert(name, tensor.detach().clone());
  return copy;
}

// A layer with float parameters and buffers plus an int64 counter, as BatchNorm has.
struct BlockImpl : nn::Module {
  BlockImpl() {
    weight = register_parameter("weight", randn({3, 2}));
    bias = register_parameter("bias", randn({3}));
    running_mean = register_buffer("running_mean", randn({3}));
    num_batches_tracked = register_buffer("num_batches_tracked", scalar_tensor(0, kInt64));
  }
  Tensor weight, bias, running_mean, num_batches_tracked;
};
XG_MODULE(Block);

struct Net : nn::Module {
  Net() {
    block = register_module("block", Block());
    scale = register_parameter("scale", randn({1}));
  }
  Block block{nullptr};
  Tensor scale;
};

}  // namespace

TEST_CASE("a state dict round-trips float32, float64 and int64 tensors, 0-D and empty ones", "[nn][serialize]") {
  TempDir dir("xgrad_serialize_test");
  manual_seed(11);
  nn::OrderedDict<Tensor> state;
  state.insert("odd.f32", randn({5}));  // 20 bytes: the 8-byte tensors must still start aligned
  state.insert("weight", randn({3, 4}).requires_grad_());
  state.insert("double", randn({2, 2, 2}, kFloat64));
  state.insert("indices", tensor({4, -1, 9, 0}, {2, 2}, kInt64));
  state.insert("scalar_f32", scalar_tensor(3.5));
  state.insert("scalar_i64", scalar_tensor(-7, kInt64));
  state.insert("empty_f64", zeros({0}, kFloat64));
  state.insert("empty_2d", zeros({2, 0}));
  std::map<std::string, std::string> metadata{{"format", "pt"}, {"epoch", "3"}, {"note", "caf\xc3\xa9"}};
  std::string path = dir.file("state.safetensors");
  nn::save_safetensors(state, path, metadata);

  std::map<std::string, std::string> loaded_metadata;
  nn::OrderedDict<Tensor> loaded = nn::load_safetensors(path, &loaded_metadata);
  CHECK(loaded.keys() == state.keys());
  for (const auto& [name, original] : state) {
    INFO(name);
    const Tensor& back = loaded[name];
    CHECK(back.dtype() == original.dtype());
    CHECK(back.shape() == original.shape());
    CHECK(equal(back, original));
    CHECK_FALSE(back.requires_grad());
  }
  CHECK(loaded["scalar_f32"].dim() == 0);
  CHECK(loaded["scalar_i64"].item<int64_t>() == -7);
  // The writer adds its checksum (test_reliability_files.cpp checks its value); the rest comes back as given.
  REQUIRE(loaded_metadata.count("crc32") == 1);
  loaded_metadata.erase("crc32");
  CHECK(loaded_metadata == metadata);

  // File size: 8-byte length, a header padded to a multiple of 8, then exactly the tensor bytes.
  std::string bytes = read_bytes(path);
  uint64_t header_length = 0;
  std::memcpy(&header_length, bytes.data(), 8);
  CHECK(header_length % 8 == 0);
  uint64_t data_bytes = 5 * 4 + 12 * 4 + 8 * 8 + 4 * 8 + 4 + 8;
  CHECK(bytes.size() == 8 + header_length + data_bytes);
  // The 8-byte dtypes come first in the data buffer: the first 8 bytes after the header are double[0].
  CHECK(bytes.substr(8 + header_length, 8) == le_f64(state["double"].data_ptr<double>()[0]));

  // An empty dict is a valid file too.
  nn::save_safetensors({}, dir.file("empty.safetensors"));
  // Only the checksum's metadata: the CRC-32 of no bytes is 0. 37 bytes of JSON + 3 spaces = 40.
  CHECK(read_bytes(dir.file("empty.safetensors")) == le_u64(40) + R"({"__metadata__":{"crc32":"00000000"}})" + "   ");
  CHECK(nn::load_safetensors(dir.file("empty.safetensors")).empty());
}

TEST_CASE("the file is byte-for-byte the safetensors format", "[nn][serialize]") {
  TempDir dir("xgrad_serialize_test");
  // Every file starts with the checksum's metadata (its value from the documented formula, test_files.hpp).
  SECTION("one F32 tensor [2] = {1, 2}") {
    nn::OrderedDict<Tensor> state;
    state.insert("t", tensor({1.0, 2.0}));
    std::string path = dir.file("t.safetensors");
    nn::save_safetensors(state, path);
    const std::string crc = xg::test::documented_crc32({{"t", state["t"]}}, {});
    // 90 bytes of JSON padded with 6 spaces to 96 = 0x60; 1.0f = 0x3f800000, 2.0f = 0x40000000.
    std::string header = R"({"__metadata__":{"crc32":")" + crc + R"("},"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
    REQUIRE(header.size() == 90);
    std::string expected =
        std::string("\x60\0\0\0\0\0\0\0", 8) + header + "      " + std::string("\x00\x00\x80\x3f\x00\x00\x00\x40", 8);
    CHECK(read_bytes(path) == expected);
  }
  SECTION("metadata first, 8-byte dtypes first in the data, header in the dict's order") {
    nn::OrderedDict<Tensor> state;
    state.insert("w", scalar_tensor(-1.5));
    state.insert("n", tensor({-2}, kInt64));
    std::string path = dir.file("m.safetensors");
    nn::save_safetensors(state, path, {{"format", "pt"}});
    const std::string crc = xg::test::documented_crc32({{"w", state["w"]}, {"n", state["n"]}}, {{"format", "pt"}});
    std::string header = R"({"__metadata__":{"crc32":")" + crc +
                         R"(","format":"pt"},"w":{"dtype":"F32","shape":[],"data_offsets":[8,12]},"n":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})";
    REQUIRE(header.size() == 157);
    // 157 + 3 spaces = 160 = 0xa0; -2 as int64 = fe ff ff ff ff ff ff ff; -1.5f = 0xbfc00000.
    std::string expected = std::string("\xa0\0\0\0\0\0\0\0", 8) + header + "   " +
                           std::string("\xfe\xff\xff\xff\xff\xff\xff\xff", 8) + std::string("\x00\x00\xc0\xbf", 4);
    CHECK(read_bytes(path) == expected);
  }
}

TEST_CASE("a file from another writer loads: any key order, field order, data order, __metadata__", "[nn][serialize]") {
  TempDir dir("xgrad_serialize_test");
  // As PyTorch's save_file might lay it out: unpadded header, whitespace, data in a different order.
  std::string header = R"({ "b": {"data_offsets": [0, 16], "shape": [2], "dtype": "I64"},
    "__metadata__": {"format": "pt", "note": "x"},
    "a": {"shape": [2, 1], "dtype": "F64", "data_offsets": [24, 40]},
    "c": {"dtype": "F32", "data_offsets": [16, 24], "shape": [2]},
    "e": {"dtype": "F32", "shape": [0, 3], "data_offsets": [40, 40]} })";
  std::string data = le_i64(3) + le_i64(-4) + le_f32(0.25f) + le_f32(8.0f) + le_f64(1.5) + le_f64(-2.0);
  std::string path = dir.file("torch.safetensors");
  write_bytes(path, make_file(header, data));

  std::map<std::string, std::string> metadata;
  nn::OrderedDict<Tensor> loaded = nn::load_safetensors(path, &metadata);
  CHECK(loaded.keys() == std::vector<std::string>{"b", "a", "c", "e"});
  CHECK(equal(loaded["b"], tensor({3, -4}, kInt64)));
  CHECK(equal(loaded["a"], tensor({1.5, -2.0}, {2, 1}, kFloat64)));
  CHECK(equal(loaded["c"], tensor({0.25, 8.0})));
  CHECK(loaded["e"].shape() == Shape{0, 3});
  CHECK(loaded["e"].dtype() == kFloat32);
  CHECK(metadata == std::map<std::string, std::string>{{"format", "pt"}, {"note", "x"}});

  std::map<std::string, Tensor> as_map = nn::load_tensors(path);
  CHECK(as_map.size() == 4);
  CHECK(equal(as_map.at("a"), loaded["a"]));
}

TEST_CASE("every kind of corrupt file is a clear error naming the file", "[nn][serialize]") {
  TempDir dir("xgrad_serialize_test");
  nn::OrderedDict<Tensor> state;
  state.insert("w", tensor({1, 2, 3}));
  state.insert("b", tensor({5, 6}, kInt64));
  std::string good_path = dir.file("good.safetensors");
  nn::save_safetensors(state, good_path);
  const std::string good = read_bytes(good_path);
  uint64_t header_length = 0;
  for (int i = 7; i >= 0; --i) header_length = (header_length << 8) | static_cast<unsigned char>(good[i]);
  REQUIRE(good.size() == 8 + header_length + 12 + 16);
  std::string path = dir.file("bad.safetensors");

  SECTION("missing or not a file") {
    check_load_fails(dir.file("missing.safetensors"), "cannot open");
    check_load_fails(dir.path.string(), "not a regular file");
  }
  SECTION("truncated at several lengths") {
    for (size_t length : {size_t{0}, size_t{1}, size_t{7}}) check_bytes_fail(path, good.substr(0, length), "too short");
    for (size_t length : {size_t{8}, size_t{8 + header_length / 2}, size_t{8 + header_length - 1}})
      check_bytes_fail(path, good.substr(0, length), "runs past the end of the file");
    for (size_t length : {size_t{8 + header_length}, size_t{8 + header_length + 5}, good.size() - 1})
      check_bytes_fail(path, good.substr(0, length), "run past the end of the data buffer");
  }
  SECTION("a flipped header length") {
    for (uint64_t length : {~uint64_t{0}, uint64_t{1} << 63, uint64_t{100'000'001}})
      check_bytes_fail(path, le_u64(length) + good.substr(8), "absurdly large");
    check_bytes_fail(path, le_u64(good.size()) + good.substr(8), "runs past the end of the file");
    check_bytes_fail(path, le_u64(header_length + 1) + good.substr(8), "not valid JSON");
    check_bytes_fail(path, le_u64(header_length - 9) + good.substr(8), "not valid JSON");
    check_bytes_fail(path, le_u64(0) + good.substr(8), "not valid JSON");
  }
  SECTION("broken JSON or not an object") {
    std::string broken = good;
    broken[8] = '[';
    check_bytes_fail(path, broken, "not valid JSON");
    check_bytes_fail(path, make_file(R"({"a":)", ""), "not valid JSON");
    check_bytes_fail(path, make_file("{\"\xff\":{}}", ""), "not valid JSON");
    check_bytes_fail(path, make_file("[1, 2]", ""), "not a JSON object");
    check_bytes_fail(path, make_file("\"text\"", ""), "not a JSON object");
  }
  SECTION("entries with missing fields or wrong types") {
    std::string four = le_f32(1);
    check_bytes_fail(path, make_file(R"({"a":5})", ""), "tensor 'a': the entry must be an object");
    check_bytes_fail(path, make_file(R"({"a":{"shape":[1],"data_offsets":[0,4]}})", four), "tensor 'a': missing \"dtype\"");
    check_bytes_fail(path, make_file(R"({"a":{"dtype":"F32","data_offsets":[0,4]}})", four), "tensor 'a': missing \"shape\"");
    check_bytes_fail(path, make_file(R"({"a":{"dtype":"F32","shape":[1]}})", four), "tensor 'a': missing \"data_offsets\"");
    check_bytes_fail(path, make_file(R"({"a":{"dtype":32,"shape":[1],"data_offsets":[0,4]}})", four), "\"dtype\" must be a string");
    for (std::string shape : {"\"1\"", "[1.5]", "[\"1\"]", "[9223372036854775808]", "null"})
      check_bytes_fail(path, make_file(R"({"a":{"dtype":"F32","shape":)" + shape + R"(,"data_offsets":[0,4]}})", four),
                       "\"shape\" must be an array of non-negative integers");
    for (std::string offsets : {"[0]", "[0,4,8]", "[0,-4]", "[0.0,4]", "\"0,4\"", "{}"})
      check_bytes_fail(path, make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":)" + offsets + "}}", four),
                       "\"data_offsets\" must be [begin, end]");
  }
  SECTION("negative and overflowing shapes") {
    check_bytes_fail(path, make_file(R"({"a":{"dtype":"F32","shape":[2,-1],"data_offsets":[0,4]}})", le_f32(1)),
                     "tensor 'a': \"shape\" [2,-1] has a negative dimension");
    check_bytes_fail(path, make_file(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,4]}})", le_f32(1)),
                     "overflows");
    check_bytes_fail(path, make_file(R"({"a":{"dtype":"F32","shape":[4611686018427387904,2],"data_offsets":[0,4]}})", le_f32(1)),
                     "overflows");
  }
  SECTION("bad offsets") {
    std::string twelve = le_f32(1) + le_f32(2) + le_f32(3);
    check_bytes_fail(path, make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", twelve),
                     "tensor 'a': data_offsets [8, 4] end before they begin");
    check_bytes_fail(path, make_file(R"({"a":{"dtype":"F32","shape":[100],"data_offsets":[0,400]}})", twelve),
                     "tensor 'a': data_offsets [0, 400] run past the end of the data buffer (12 bytes)");
    check_bytes_fail(path, make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,12]}})", twelve),
                     "hold 12 bytes, but dtype F32 and shape [2] need 8");
    check_bytes_fail(path, make_file(R"({"a":{"dtype":"I64","shape":[],"data_offsets":[0,4]}})", le_f32(1)),
                     "hold 4 bytes, but dtype I64 and shape [] need 8");
    check_bytes_fail(path,
                     make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                               twelve),
                     "overlap");
    check_bytes_fail(path,
                     make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                               twelve),
                     "a gap: bytes [4, 8)");
    check_bytes_fail(path, make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", twelve.substr(0, 8)), "a gap: bytes [0, 4)");
    check_bytes_fail(path, make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", twelve), "trailing data: 8 bytes");
    check_bytes_fail(path, good + "xyz", "trailing data: 3 bytes");
  }
  SECTION("unsupported dtypes are named") {
    for (std::string dtype : {"F16", "BF16", "I32", "U8", "BOOL", "float32"})
      check_bytes_fail(path, make_file(R"({"a":{"dtype":")" + dtype + R"(","shape":[2],"data_offsets":[0,4]}})", le_f32(1)),
                       "tensor 'a': dtype '" + dtype + "' is not supported");
  }
  SECTION("duplicate keys and bad metadata") {
    std::string entry = R"({"dtype":"F32","shape":[1],"data_offsets":[0,4]})";
    check_bytes_fail(path, make_file(R"({"a":)" + entry + R"(,"a":)" + entry + "}", le_f32(1)), "duplicate key 'a'");
    check_bytes_fail(path, make_file(R"({"a":{"dtype":"F32","dtype":"F64","shape":[1],"data_offsets":[0,4]}})", le_f32(1)),
                     "duplicate key 'dtype'");
    check_bytes_fail(path, make_file(R"({"__metadata__":{"k":"v","k":"w"}})", ""), "duplicate key 'k'");
    check_bytes_fail(path, make_file(R"({"__metadata__":{"epoch":3}})", ""), "\"__metadata__\" must be an object of strings");
    check_bytes_fail(path, make_file(R"({"__metadata__":["a"]})", ""), "\"__metadata__\" must be an object of strings");
  }
  // The good file itself still loads (the corruptions above are what failed).
  CHECK(same_state(nn::load_safetensors(good_path), state));
}

TEST_CASE("writes are atomic: a failed save keeps the previous file and leaves no temporary file", "[nn][serialize]") {
  TempDir dir("xgrad_serialize_test");
  std::string path = dir.file("model.safetensors");
  nn::OrderedDict<Tensor> previous;
  previous.insert("w", tensor({1, 2, 3}));
  nn::save_safetensors(previous, path);
  const std::string previous_bytes = read_bytes(path);
  auto check_previous_intact = [&] {
    CHECK(read_bytes(path) == previous_bytes);
    CHECK(same_state(nn::load_safetensors(path), previous));
    CHECK(dir.temp_files().empty());
  };

  SECTION("tensors that cannot be written") {
    nn::OrderedDict<Tensor> bad;
    bad.insert("w", tensor({4, 5, 6}));
    bad.insert("missing", Tensor());
    CHECK_THROWS_WITH(nn::save_safetensors(bad, path), Contains(path) && Contains("tensor 'missing' is undefined"));
    nn::OrderedDict<Tensor> reserved;
    reserved.insert("__metadata__", tensor({1}));
    CHECK_THROWS_WITH(nn::save_safetensors(reserved, path), Contains("'__metadata__' is reserved"));
    nn::OrderedDict<Tensor> not_utf8;
    not_utf8.insert("w\xff", tensor({1}));
    CHECK_THROWS_WITH(nn::save_safetensors(not_utf8, path), Contains("tensor name") && Contains("not valid UTF-8"));
    CHECK_THROWS_WITH(nn::save_safetensors(previous, path, {{"k", "\xc3"}}), Contains("metadata value") && Contains("not valid UTF-8"));
    check_previous_intact();
  }
  SECTION("the target directory does not exist") {
    std::string elsewhere = dir.file("no/such/dir/model.safetensors");
    CHECK_THROWS_WITH(nn::save_safetensors(previous, elsewhere), Contains(elsewhere) && Contains("cannot create the temporary file"));
    CHECK_FALSE(fs::exists(elsewhere));
    check_previous_intact();
  }
  SECTION("the target is a directory (refused before anything is written)") {
    std::string target = dir.file("occupied");
    fs::create_directory(target);
    write_bytes(target + "/keep.txt", "keep");
    CHECK_THROWS_WITH(nn::save_safetensors(previous, target), Contains(target) && Contains("a directory, not a regular file"));
    CHECK(fs::is_directory(target));
    CHECK(read_bytes(target + "/keep.txt") == "keep");
    check_previous_intact();
  }
  SECTION("the disk fills up in the middle of the data") {
    // A 64 KiB file-size limit makes write() fail with EFBIG partway through a 4 MB tensor.
    struct FileSizeLimit {
      rlimit saved{};
      void (*saved_handler)(int);
      explicit FileSizeLimit(rlim_t bytes) {
        saved_handler = std::signal(SIGXFSZ, SIG_IGN);
        REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved) == 0);
        rlimit lowered = saved;
        lowered.rlim_cur = bytes;
        REQUIRE(::setrlimit(RLIMIT_FSIZE, &lowered) == 0);
      }
      ~FileSizeLimit() {
        ::setrlimit(RLIMIT_FSIZE, &saved);
        std::signal(SIGXFSZ, saved_handler);
      }
    };
    nn::OrderedDict<Tensor> big;
    big.insert("w", zeros({1 << 20}));
    bool threw = false;
    std::string message;
    {
      FileSizeLimit limit(64 * 1024);
      try {
        nn::save_safetensors(big, path);
      } catch (const Error& error) {
        threw = true;
        message = error.what();
      }
    }
    CHECK(threw);
    CHECK_THAT(message, Contains(path) && Contains("cannot write the temporary file"));
    check_previous_intact();
  }
  SECTION("a successful overwrite replaces the content and keeps the permissions") {
    ::chmod(path.c_str(), 0600);
    nn::OrderedDict<Tensor> next;
    next.insert("w", tensor({7, 8}));
    nn::save_safetensors(next, path);
    CHECK(same_state(nn::load_safetensors(path), next));
    struct stat info {};
    REQUIRE(::stat(path.c_str(), &info) == 0);
    CHECK((info.st_mode & 0777) == 0600);
    CHECK(dir.temp_files().empty());
  }
}

TEST_CASE("save/load a module: round trip, holders, strict on and off, unchanged on failure", "[nn][serialize]") {
  TempDir dir("xgrad_serialize_test");
  manual_seed(5);
  auto net = std::make_shared<Net>();
  net->block->num_batches_tracked.fill_(7);
  std::string path = dir.file("net.safetensors");
  nn::save(net, path);

  auto other = std::make_shared<Net>();  // different random values
  REQUIRE_FALSE(same_state(snapshot(*other), snapshot(*net)));
  nn::load(other, path);
  CHECK(same_state(snapshot(*other), snapshot(*net)));
  CHECK(other->block->num_batches_tracked.dtype() == kInt64);
  CHECK(other->block->num_batches_tracked.item<int64_t>() == 7);
  CHECK(other->scale.requires_grad());  // loading copies values into the same parameter handles

  // Holder and plain-reference overloads.
  Block block;
  std::string block_path = dir.file("block.safetensors");
  nn::save(block, block_path);
  Block block_copy;
  nn::load(*block_copy, block_path);
  CHECK(same_state(snapshot(*block_copy), snapshot(*block)));
  nn::load(block_copy, path, /*strict=*/false);  // keys "block.*" and "scale" match nothing here
  CHECK(same_state(snapshot(*block_copy), snapshot(*block)));

  auto target = std::make_shared<Net>();
  const nn::OrderedDict<Tensor> before = snapshot(*target);
  nn::OrderedDict<Tensor> saved = nn::load_safetensors(path);

  SECTION("a missing key: strict fails and changes nothing; non-strict loads the rest") {
    nn::OrderedDict<Tensor> partial = saved;
    partial.erase("scale");
    nn::save_safetensors(partial, path);
    CHECK_THROWS_WITH(nn::load(target, path), Contains(path) && Contains("missing keys: [scale]"));
    CHECK(same_state(snapshot(*target), before));
    nn::load(target, path, false);
    CHECK(equal(target->block->weight, saved["block.weight"]));
    CHECK(equal(target->scale, before["scale"]));
  }
  SECTION("an unexpected key: strict fails, non-strict ignores it") {
    nn::OrderedDict<Tensor> extra = saved;
    extra.insert("head.weight", ones({2}));
    nn::save_safetensors(extra, path);
    CHECK_THROWS_WITH(nn::load(target, path), Contains(path) && Contains("unexpected keys: [head.weight]"));
    CHECK(same_state(snapshot(*target), before));
    nn::load(target, path, false);
    CHECK(same_state(snapshot(*target), snapshot(*net)));
  }
  SECTION("a shape mismatch fails even when not strict, before anything is copied") {
    nn::OrderedDict<Tensor> wrong = saved;
    wrong["block.bias"] = zeros({4});
    nn::save_safetensors(wrong, path);
    CHECK_THROWS_WITH(nn::load(target, path, false), Contains(path) && Contains("size mismatch for block.bias"));
    CHECK(same_state(snapshot(*target), before));
  }
  SECTION("an int64 tensor for a float parameter is a dtype error") {
    nn::OrderedDict<Tensor> wrong = saved;
    wrong["scale"] = tensor({1}, kInt64);
    nn::save_safetensors(wrong, path);
    CHECK_THROWS_WITH(nn::load(target, path), Contains(path) && Contains("dtype mismatch for scale"));
    CHECK(same_state(snapshot(*target), before));
  }
  SECTION("a corrupt file changes nothing") {
    std::string bytes = read_bytes(path);
    write_bytes(path, bytes.substr(0, bytes.size() - 3));
    CHECK_THROWS_WITH(nn::load(target, path), Contains(path) && Contains("run past the end of the data buffer"));
    CHECK(same_state(snapshot(*target), before));
  }
}

TEST_CASE("loading converts float dtypes to the model's; int64 buffers stay int64", "[nn][serialize]") {
  TempDir dir("xgrad_serialize_test");
  std::string path = dir.file("f64.safetensors");
  // 0.1 is not a float: the float32 model must hold float(0.1), not some other rounding.
  nn::OrderedDict<Tensor> state;
  state.insert("block.weight", full({3, 2}, 0.1, kFloat64));
  state.insert("block.bias", tensor({1e-3, -2.5, 1.0 / 3.0}, kFloat64));
  state.insert("scale", tensor({4.0}, kFloat64));
  state.insert("block.running_mean", tensor({1, 2, 3}, kFloat64));
  state.insert("block.num_batches_tracked", scalar_tensor(12, kInt64));
  nn::save_safetensors(state, path);

  auto net = std::make_shared<Net>();
  nn::load(net, path);
  CHECK(net->block->weight.dtype() == kFloat32);
  for (int i = 0; i < 6; ++i) CHECK(net->block->weight.data_ptr<float>()[i] == static_cast<float>(0.1));
  CHECK(net->block->bias.data_ptr<float>()[2] == static_cast<float>(1.0 / 3.0));
  CHECK(net->block->num_batches_tracked.dtype() == kInt64);
  CHECK(net->block->num_batches_tracked.item<int64_t>() == 12);

  // And the other way: a float32 file into a float64 model.
  std::string f32_path = dir.file("f32.safetensors");
  nn::save(net, f32_path);
  auto wide = std::make_shared<Net>();
  wide->to(kFloat64);
  nn::load(wide, f32_path);
  CHECK(wide->block->bias.dtype() == kFloat64);
  CHECK(wide->block->bias.data_ptr<double>()[2] == static_cast<double>(static_cast<float>(1.0 / 3.0)));
}

TEST_CASE("save_tensors/load_tensors hold generic checkpoint pieces", "[nn][serialize]") {
  TempDir dir("xgrad_serialize_test");
  std::map<std::string, Tensor> pieces{{"state.0.exp_avg", tensor({0.5, -0.25})},
                                       {"state.0.step", scalar_tensor(10, kInt64)},
                                       {"rng.state", tensor({1, 2, 3, 4}, kInt64)},
                                       {"param_groups.0.lr", scalar_tensor(1e-3, kFloat64)}};
  std::string path = dir.file("optim.safetensors");
  nn::save_tensors(pieces, path, {{"kind", "Adam"}});
  std::map<std::string, std::string> metadata;
  std::map<std::string, Tensor> loaded = nn::load_tensors(path, &metadata);
  REQUIRE(loaded.size() == pieces.size());
  for (const auto& [name, tensor] : pieces) {
    INFO(name);
    CHECK(equal(loaded.at(name), tensor));
  }
  CHECK(metadata == std::map<std::string, std::string>{{"crc32", xg::test::documented_crc32(pieces, {{"kind", "Adam"}})}, {"kind", "Adam"}});
  CHECK_THROWS_WITH(nn::load_tensors(dir.file("nope")), Contains("load_tensors") && Contains("cannot open"));
}
