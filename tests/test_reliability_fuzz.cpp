// The fuzz targets' inputs replayed in the ordinary test suite (and so under ASan/UBSan in CI's sanitizer
// build): every seed of tests/fuzz/corpus/ must load, and every input in tests/fuzz/regressions/ -- each one
// crashed a loader once -- must now give a result or an xg::Error. Inputs the fuzzers found that need a
// precise assertion about the error are spelled out below as well.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "fuzz/fuzz_harness.hpp"

using namespace xg;
namespace fs = std::filesystem;
using Catch::Matchers::Contains;

namespace {

fs::path fuzz_dir() {
  // The sources are compiled by absolute path, so __FILE__ locates the repository's tests/ folder.
  return fs::path(__FILE__).parent_path() / "fuzz";
}

std::vector<uint8_t> read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::vector<fs::path> files_in(const fs::path& dir) {
  std::vector<fs::path> files;
  if (!fs::is_directory(dir)) return files;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.is_regular_file()) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

TEST_CASE("fuzz seeds: every file of the seed corpora is accepted by its loader", "[reliability][fuzz]") {
  const fs::path corpus = fuzz_dir() / "corpus";
  fuzz::MemoryFile file;

  const auto idx_seeds = files_in(corpus / "idx");
  REQUIRE(idx_seeds.size() >= 5);
  for (const fs::path& seed : idx_seeds) {
    INFO(seed.string());
    std::vector<uint8_t> bytes = read_bytes(seed);
    data::IdxArray array;
    REQUIRE_NOTHROW(array = data::read_idx(seed.string()));
    CHECK(array.to_tensor().numel() == array.numel());
    fuzz::run_idx(bytes.data(), bytes.size());
  }

  const auto safetensors_seeds = files_in(corpus / "safetensors");
  REQUIRE(safetensors_seeds.size() >= 4);
  for (const fs::path& seed : safetensors_seeds) {
    INFO(seed.string());
    std::vector<uint8_t> bytes = read_bytes(seed);
    REQUIRE_NOTHROW(nn::load_safetensors(seed.string()));
    fuzz::run_safetensors(bytes.data(), bytes.size());
  }
  // The checkpoint seed is a complete checkpoint of the harness's objects (so the fuzzer starts there).
  fuzz::CheckpointTargets targets;
  CHECK(targets.checkpoint.load((corpus / "safetensors" / "checkpoint.safetensors").string()).epoch == 3);

  const auto csv_seeds = files_in(corpus / "csv");
  REQUIRE(csv_seeds.size() >= 4);
  for (const fs::path& seed : csv_seeds) {
    INFO(seed.string());
    std::vector<uint8_t> bytes = read_bytes(seed);
    REQUIRE(bytes.size() > 1);
    const std::string& path = file.write(bytes.data() + 1, bytes.size() - 1);
    REQUIRE_NOTHROW(data::CSVDataset(path, fuzz::csv_options_from_byte(bytes[0])));
    fuzz::run_csv(bytes.data(), bytes.size());
  }
}

TEST_CASE("fuzz regressions: inputs that once crashed a loader now load or raise xg::Error", "[reliability][fuzz]") {
  const fs::path regressions = fuzz_dir() / "regressions";
  for (const fs::path& input : files_in(regressions / "idx")) {
    INFO(input.string());
    std::vector<uint8_t> bytes = read_bytes(input);
    fuzz::run_idx(bytes.data(), bytes.size());
  }
  for (const fs::path& input : files_in(regressions / "safetensors")) {
    INFO(input.string());
    std::vector<uint8_t> bytes = read_bytes(input);
    fuzz::run_safetensors(bytes.data(), bytes.size());
  }
  for (const fs::path& input : files_in(regressions / "csv")) {
    INFO(input.string());
    std::vector<uint8_t> bytes = read_bytes(input);
    fuzz::run_csv(bytes.data(), bytes.size());
  }
}

TEST_CASE("CSV regression: labels of inf or beyond int64 are errors, not undefined behaviour", "[reliability][fuzz][data]") {
  // Found by review and fuzz_csv: strtod accepts "inf" and "1e300", and the label was cast to int64 after
  // checking only that it is integral (inf == floor(inf)): undefined behaviour, in practice INT64_MIN.
  const fs::path dir = fs::temp_directory_path();
  auto write = [&](const std::string& name, const std::string& text) {
    const fs::path path = dir / (std::to_string(::getpid()) + "_" + name);
    std::ofstream(path, std::ios::binary) << text;
    return path.string();
  };
  const std::string inf_label = write("inf_label.csv", "a,y\n1,0\n2,inf\n");
  const std::string huge_label = write("huge_label.csv", "a,y\n1,-1e19\n");
  const std::string largest_label = write("largest_label.csv", "a,y\n1,-9223372036854775808\n");
  const std::string huge_feature = write("huge_feature.csv", "a,y\n1e39,1\n");
  const std::string huge_float_target = write("huge_float_target.csv", "a,y\n1,-1e39\n");
  const std::string explicit_nan = write("explicit_nan.csv", "a,y\nnan,0.5\ninf,-inf\n");
  CHECK_THROWS_WITH(data::CSVDataset(inf_label), Contains(inf_label) && Contains("row 2") && Contains("inf") && Contains("int64"));
  CHECK_THROWS_WITH(data::CSVDataset(huge_label), Contains("row 1") && Contains("-1e+19") && Contains("int64"));
  // -2^63 itself is representable.
  CHECK(data::CSVDataset(largest_label).targets().data_ptr<int64_t>()[0] == std::numeric_limits<int64_t>::min());
  // A finite value beyond float32 would silently become inf.
  CHECK_THROWS_WITH(data::CSVDataset(huge_feature), Contains("row 1 column 1") && Contains("1e+39") && Contains("float32"));
  CHECK_THROWS_WITH(data::CSVDataset(huge_float_target, data::CSVOptions().target_type(kFloat32)),
                    Contains("row 1 column 2") && Contains("float32"));
  // NaN and inf written in the file are data, kept as such.
  data::CSVDataset kept(explicit_nan, data::CSVOptions().target_type(kFloat32));
  CHECK(std::isnan(kept.data().data_ptr<float>()[0]));
  CHECK(std::isinf(kept.data().data_ptr<float>()[1]));
  CHECK(std::isinf(kept.targets().data_ptr<float>()[1]));
  for (const std::string& path : {inf_label, huge_label, largest_label, huge_feature, huge_float_target, explicit_nan}) fs::remove(path);
}

namespace {
/// A safetensors file with one header and no data: 8-byte little-endian length, then the JSON.
std::vector<uint8_t> safetensors_bytes(const std::string& header) {
  std::vector<uint8_t> bytes;
  bytes.reserve(8 + header.size());
  for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<uint8_t>((header.size() >> (8 * i)) & 0xff));
  for (char c : header) bytes.push_back(static_cast<uint8_t>(c));
  return bytes;
}
}  // namespace

TEST_CASE("idx regression: an empty shape whose other sizes overflow is an error, not undefined behaviour", "[reliability][fuzz][data]") {
  // Found by fuzz_idx: [0, 2^32 - 1, 2^32 - 1, ...] has no elements, so the payload check passed, and the
  // tensor's strides (products of the other sizes) overflowed int64 inside xtensor.
  const std::vector<uint8_t> bytes = {0, 0, 0x08, 3, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  CHECK_THROWS_WITH(data::parse_idx(bytes, "huge.idx"), Contains("huge.idx") && Contains("overflows"));
  // The fuzzer's own input (int type, 5 dims).
  const std::vector<uint8_t> found = read_bytes(fuzz_dir() / "regressions" / "idx" / "zero_dim_then_huge_dims_overflow_strides.idx");
  CHECK_THROWS_WITH(data::parse_idx(found, "found.idx"), Contains("overflows"));
  // Empty tensors with modest sizes still load.
  const std::vector<uint8_t> empty = {0, 0, 0x08, 2, 0, 0, 0, 0, 0, 0, 0x10, 0};
  CHECK(data::parse_idx(empty, "empty.idx").to_tensor().shape() == Shape{0, 4096});
}

TEST_CASE("safetensors regression: out-of-range JSON numbers and overflowing empty shapes are xg::Error", "[reliability][fuzz][nn]") {
  fuzz::MemoryFile file;
  auto load = [&](const std::vector<uint8_t>& bytes) { return nn::load_safetensors(file.write(bytes.data(), bytes.size())); };
  // Found by fuzz_safetensors: 1e400 made the JSON parser throw its out_of_range exception, which escaped
  // as a foreign exception (terminate in a program that only catches xg::Error).
  CHECK_THROWS_WITH(load(safetensors_bytes(R"({"w":{"dtype":"F32","shape":[1e400],"data_offsets":[0,0]}})")),
                    Contains("not valid JSON") && Contains("1e400"));
  const std::vector<uint8_t> found = read_bytes(fuzz_dir() / "regressions" / "safetensors" / "json_number_1e400_out_of_range.safetensors");
  CHECK_THROWS_WITH(load(found), Contains("not valid JSON"));
  // The same class of bug as fuzz_idx found: an empty tensor whose other sizes overflow the strides.
  CHECK_THROWS_WITH(load(safetensors_bytes(R"({"w":{"dtype":"F32","shape":[0,1099511627776,1099511627776],"data_offsets":[0,0]}})")),
                    Contains("tensor 'w'") && Contains("overflows"));
  // Modest empty tensors still load.
  CHECK(load(safetensors_bytes(R"({"w":{"dtype":"F32","shape":[0,1024,1024],"data_offsets":[0,0]}})")).begin()->second.shape() ==
        Shape{0, 1024, 1024});
}

TEST_CASE("safetensors: any malformed JSON header is an xg::Error naming the file and the problem", "[reliability][fuzz][nn]") {
  // The JSON library throws its own exceptions (parse_error, out_of_range, type_error); none may escape
  // the loader, whose callers only catch xg::Error.
  fuzz::MemoryFile file;
  const std::string deep(100000, '[');
  const std::string deep_closed = deep + std::string(100000, ']');
  struct Case {
    const char* what;
    std::string header;
    const char* problem;  // a phrase the message must contain
  };
  const std::vector<Case> cases = {
      {"a number beyond double in data_offsets", R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,-1e400]}})", "not valid JSON"},
      {"a truncated header", R"({"w":{"dtype":"F32","shape":[1],)", "not valid JSON"},
      {"text after the object", R"({} trailing)", "not valid JSON"},
      {"an empty header", "", "not valid JSON"},
      {"a NaN literal", R"({"w":NaN})", "not valid JSON"},
      {"a single quote", R"({'w':1})", "not valid JSON"},
      {"a lone UTF-16 surrogate", R"({"\ud800":{}})", "not valid JSON"},
      {"a byte that is not UTF-8 in a key", "{\"\xff\":{}}", "not valid JSON"},
      {"a control character in a string", "{\"w\x01\":{}}", "not valid JSON"},
      {"an array, not an object", "[1,2]", "not a JSON object"},
      {"a string, not an object", R"("w")", "not a JSON object"},
      {"a duplicate key", R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"w":{}})", "duplicate key 'w'"},
      {"an integer beyond uint64 as a size", R"({"w":{"dtype":"F32","shape":[18446744073709551616],"data_offsets":[0,0]}})",
       "non-negative integers"},
      {"a fractional size", R"({"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", "non-negative integers"},
      {"metadata that is not strings", R"({"__metadata__":{"k":1}})", "__metadata__"},
      // Refused before parsing (the parser recurses per level): deeper than a safetensors header goes.
      {"a tensor entry nested 100000 deep", "{\"w\":" + deep_closed + "}", "nests JSON deeper than 3 levels (at byte 7)"},
      {"a shape nested 100000 deep", R"({"w":{"dtype":"F32","data_offsets":[0,0],"shape":)" + deep_closed + "}}", "nests JSON deeper"},
      {"unclosed nesting 100000 deep", "{\"w\":" + deep, "nests JSON deeper"},
      {"a shape nested one level too deep", R"({"w":{"dtype":"F32","data_offsets":[0,4],"shape":[[1]]}})", "nests JSON deeper"},
      {"an unterminated key 100000 long", "{\"" + std::string(100000, 'k'), "not valid JSON"},
  };
  for (const Case& c : cases) {
    INFO("case: " << c.what);
    const std::vector<uint8_t> bytes = safetensors_bytes(c.header);
    const std::string& path = file.write(bytes.data(), bytes.size());
    std::string message;
    try {
      nn::load_safetensors(path);
      message = "<<no exception was thrown>>";
    } catch (const Error& error) {
      message = error.what();
    } catch (const std::exception& error) {
      message = std::string("<<not an xg::Error>> ") + error.what();
    }
    INFO("message: " << message.substr(0, 400));
    CHECK_THAT(message, Contains(path) && Contains(c.problem) && !Contains("<<"));
    // A message quoting a 100000-deep value whole would be unreadable.
    CHECK(message.size() < 2000);
  }
}
