// Files on disk (issue 13, "loses data"): symlinks and special files as save targets, the temporaries
// of killed saves, the CRC-32 of model files, and hostile safetensors headers (deep nesting, 100,000 entries).
#include <catch2/catch.hpp>

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <xgrad/nn/serialize.hpp>

#include "test_files.hpp"

using namespace xg;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

using xg::test::read_bytes;
using xg::test::TempDir;
using xg::test::write_bytes;

nn::OrderedDict<Tensor> state_with(std::vector<double> values) {
  nn::OrderedDict<Tensor> state;
  state.insert("w", tensor(values));
  return state;
}

/// Whether path holds exactly one float32 tensor "w" with these values.
bool holds(const std::string& path, std::vector<double> values) {
  nn::OrderedDict<Tensor> loaded = nn::load_safetensors(path);
  return loaded.size() == 1 && loaded.contains("w") && equal(loaded["w"], tensor(values));
}

std::string le_u64(uint64_t value) {
  std::string out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
  return out;
}

/// A safetensors file as any writer makes it: length, header, data.
std::string safetensors_file(const std::string& header, const std::string& data) { return le_u64(header.size()) + header + data; }

std::string host_name() {
  char name[256] = {};
  REQUIRE(::gethostname(name, sizeof(name) - 1) == 0);
  return name;
}

/// A pid that ran and has exited (reaped): what a killed save leaves in its temporary's name.
pid_t dead_pid() {
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) ::_exit(0);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  return child;
}

/// Names in dir starting with prefix.
std::vector<std::string> names_starting_with(const fs::path& dir, const std::string& prefix) {
  std::vector<std::string> found;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().filename().string().compare(0, prefix.size(), prefix) == 0) found.push_back(entry.path().filename().string());
  return found;
}

}  // namespace

TEST_CASE("files: a save through a symlink updates the file it points to and keeps the link", "[reliability][files]") {
  TempDir dir("xgrad_files_test");
  fs::create_directories(dir.path / "run3");
  fs::create_directories(dir.path / "links");
  const std::string model = dir.file("run3/model.safetensors");
  nn::save_safetensors(state_with({1, 2}), model);
  ::chmod(model.c_str(), 0640);

  SECTION("a relative link, as `ln -s run3/model.safetensors latest.safetensors` makes") {
    const std::string latest = dir.file("latest.safetensors");
    fs::create_symlink("run3/model.safetensors", latest);
    nn::save_safetensors(state_with({3, 4}), latest);
    CHECK(fs::is_symlink(latest));
    CHECK(fs::read_symlink(latest) == "run3/model.safetensors");
    CHECK(holds(model, {3, 4}));
    struct stat info {};
    REQUIRE(::stat(model.c_str(), &info) == 0);
    CHECK((info.st_mode & 0777) == 0640);  // the target keeps its permissions
  }
  SECTION("a chain of links, each relative to its own directory, and an absolute link") {
    fs::create_symlink("../run3/model.safetensors", dir.path / "links" / "first");
    fs::create_symlink("links/first", dir.path / "second");
    fs::create_symlink(fs::absolute(dir.path / "second"), dir.path / "links" / "absolute");
    nn::save_safetensors(state_with({5, 6}), dir.file("links/absolute"));
    CHECK(fs::is_symlink(dir.path / "links" / "first"));
    CHECK(fs::is_symlink(dir.path / "second"));
    CHECK(fs::is_symlink(dir.path / "links" / "absolute"));
    CHECK(holds(model, {5, 6}));
    CHECK(holds(dir.file("links/absolute"), {5, 6}));
  }
  SECTION("a dangling link creates the file it names") {
    fs::create_directories(dir.path / "run4");
    const std::string link = dir.file("next.safetensors");
    fs::create_symlink("run4/model.safetensors", link);
    nn::save_safetensors(state_with({7}), link);
    CHECK(fs::is_symlink(link));
    CHECK(holds(dir.file("run4/model.safetensors"), {7}));
  }
  SECTION("a loop of links is an error") {
    fs::create_symlink("loop_b", dir.path / "loop_a");
    fs::create_symlink("loop_a", dir.path / "loop_b");
    CHECK_THROWS_WITH(nn::save_safetensors(state_with({1}), dir.file("loop_a")),
                      Contains(dir.file("loop_a")) && Contains("too many levels of symbolic links"));
  }
  CHECK(fs::is_regular_file(fs::symlink_status(model)));
  CHECK(dir.temp_files().empty());
}

TEST_CASE("files: a save refuses targets that are not regular files and leaves them as they were", "[reliability][files]") {
  TempDir dir("xgrad_files_test");
  const auto state = state_with({1, 2});
  auto kind_of = [](const std::string& path) {
    struct stat info {};
    REQUIRE(::lstat(path.c_str(), &info) == 0);
    return info.st_mode & S_IFMT;
  };

  SECTION("a fifo") {
    const std::string fifo = dir.file("pipe");
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    CHECK_THROWS_WITH(nn::save_safetensors(state, fifo), Contains(fifo) && Contains("a fifo, not a regular file"));
    CHECK(kind_of(fifo) == S_IFIFO);
  }
  SECTION("a directory") {
    const std::string directory = dir.file("sub");
    fs::create_directory(directory);
    CHECK_THROWS_WITH(nn::save_safetensors(state, directory), Contains(directory) && Contains("a directory, not a regular file"));
    CHECK(kind_of(directory) == S_IFDIR);
  }
  SECTION("a symlink to a character device (/dev/null): the link and the device stay") {
    const std::string link = dir.file("null.safetensors");
    fs::create_symlink("/dev/null", link);
    CHECK_THROWS_WITH(nn::save_safetensors(state, link),
                      Contains(link) && Contains("'/dev/null'") && Contains("a character device, not a regular file"));
    CHECK(kind_of(link) == S_IFLNK);
    CHECK(kind_of("/dev/null") == S_IFCHR);
  }
  SECTION("a device node such as /dev/full (made here, as root can)") {
    const std::string full = dir.file("full");
    if (::mknod(full.c_str(), S_IFCHR | 0600, makedev(1, 7)) != 0) {
      WARN("not root: cannot make a device node; skipped");
      return;
    }
    CHECK_THROWS_WITH(nn::save_safetensors(state, full), Contains(full) && Contains("a character device, not a regular file"));
    CHECK(kind_of(full) == S_IFCHR);
  }
  CHECK(dir.temp_files().empty());
}

TEST_CASE("files: a save removes the temporaries of killed saves of the same file, and only those", "[reliability][files]") {
  TempDir dir("xgrad_files_test");
  const std::string path = dir.file("model.safetensors");
  const std::string prefix = ".model.safetensors.xgrad.tmp.";
  const std::string host = host_name();

  SECTION("a save killed in the middle leaves its temporary; the next save of the file removes it") {
    nn::OrderedDict<Tensor> big;
    big.insert("w", zeros({1 << 20}));  // 4 MB
    pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      // Killed by SIGXFSZ (its default action) once the file passes 64 KiB: a kill at a known point.
      std::signal(SIGXFSZ, SIG_DFL);
      rlimit no_core{0, 0}, small{64 * 1024, 64 * 1024};
      ::setrlimit(RLIMIT_CORE, &no_core);
      ::setrlimit(RLIMIT_FSIZE, &small);
      try {
        nn::save_safetensors(big, path);
      } catch (...) {
      }
      ::_exit(0);  // not reached when the kill happened
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGXFSZ);
    CHECK(names_starting_with(dir.path, prefix).size() == 1);  // what used to pile up, one per killed save
    CHECK_FALSE(fs::exists(path));
    nn::save_safetensors(state_with({1}), path);
    CHECK(names_starting_with(dir.path, prefix).empty());
    CHECK(holds(path, {1}));
  }
  SECTION("only temporaries of this file, of this host, whose process is gone") {
    const pid_t dead = dead_pid();
    const std::string stale = prefix + host + "." + std::to_string(dead) + ".0";
    const std::string live = prefix + host + "." + std::to_string(::getppid()) + ".0";     // another process still saving
    const std::string own = prefix + host + "." + std::to_string(::getpid()) + ".99";      // this process's own
    const std::string other_host = prefix + "elsewhere." + std::to_string(dead) + ".0";    // a shared directory
    const std::string other_file = ".weights.safetensors.xgrad.tmp." + host + "." + std::to_string(dead) + ".0";
    const std::string unrelated = prefix + host + ".notapid.0";
    for (const std::string& name : {stale, live, own, other_host, other_file, unrelated}) write_bytes(dir.file(name), "partial");
    nn::save_safetensors(state_with({2}), path);
    CHECK_FALSE(fs::exists(dir.file(stale)));
    for (const std::string& name : {live, own, other_host, other_file, unrelated}) {
      INFO(name);
      CHECK(fs::exists(dir.file(name)));
    }
    CHECK(holds(path, {2}));
  }
  SECTION("through a symlink, the temporaries live (and are cleaned) next to the real file") {
    fs::create_directories(dir.path / "run");
    fs::create_symlink("run/model.safetensors", path);
    const std::string stale = "run/" + prefix + host + "." + std::to_string(dead_pid()) + ".3";
    write_bytes(dir.file(stale), "partial");
    nn::save_safetensors(state_with({3}), path);
    CHECK_FALSE(fs::exists(dir.file(stale)));
    CHECK(holds(dir.file("run/model.safetensors"), {3}));
  }
}

TEST_CASE("files: every saved file carries a CRC-32 that turns a flipped byte into an error", "[reliability][files]") {
  TempDir dir("xgrad_files_test");
  const std::string path = dir.file("model.safetensors");
  nn::OrderedDict<Tensor> state;
  state.insert("weight", tensor({0.5, -1.25, 2.0}));
  state.insert("steps", tensor({3}, kInt64));
  nn::save_safetensors(state, path, {{"note", "abc"}});

  // The stored value is the documented formula, computed independently (test_files.hpp).
  std::map<std::string, std::string> metadata;
  nn::load_safetensors(path, &metadata);
  CHECK(metadata.at("crc32") == xg::test::documented_crc32({{"weight", state["weight"]}, {"steps", state["steps"]}}, {{"note", "abc"}}));

  const std::string bytes = read_bytes(path);
  const std::string broken = dir.file("broken.safetensors");
  SECTION("a flipped bit in the data") {
    for (size_t position : {bytes.size() - 1, bytes.size() - 12}) {
      std::string corrupt = bytes;
      corrupt[position] ^= 0x01;
      write_bytes(broken, corrupt);
      CHECK_THROWS_WITH(nn::load_safetensors(broken), Contains(broken) && Contains("checksum does not match"));
      CHECK_THROWS_WITH(nn::load_tensors(broken), Contains(broken) && Contains("checksum"));
    }
  }
  SECTION("a changed metadata value") {
    std::string corrupt = bytes;
    const size_t at = corrupt.find("\"abc\"");
    REQUIRE(at != std::string::npos);
    corrupt[at + 3] = 'd';
    write_bytes(broken, corrupt);
    CHECK_THROWS_WITH(nn::load_safetensors(broken), Contains(broken) && Contains("checksum does not match"));
  }
  SECTION("nn::load names the file and leaves the module unchanged") {
    struct Net : nn::Module {
      Net() { weight = register_parameter("weight", zeros({3})); }
      Tensor weight;
    } net;
    nn::save(net, path);
    std::string corrupt = read_bytes(path);
    corrupt.back() ^= 0x40;
    write_bytes(broken, corrupt);
    CHECK_THROWS_WITH(nn::load(net, broken), Contains(broken) && Contains("checksum"));
    CHECK(equal(net.weight, zeros({3})));
  }
  SECTION("files without a checksum (PyTorch's safetensors writes none) still load") {
    // As safetensors.torch.save_file({"w": torch.tensor([1.0, 2.0])}, path, {"format": "pt"}) writes it.
    const std::string header = R"({"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
    write_bytes(broken, safetensors_file(header, std::string("\x00\x00\x80\x3f\x00\x00\x00\x40", 8)));
    CHECK(holds(broken, {1, 2}));
    write_bytes(broken, safetensors_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                                         std::string("\x00\x00\x80\x3f\x00\x00\x00\x40", 8)));
    CHECK(holds(broken, {1, 2}));
  }
}

TEST_CASE("files: a header nested far deeper than the format is refused before parsing, not a stack overflow",
          "[reliability][files][fuzz]") {
  TempDir dir("xgrad_files_test");
  const std::string path = dir.file("deep.safetensors");
  const size_t depth = 1000000;  // 140,000 overflowed the stack in the JSON parser
  write_bytes(path, safetensors_file("{\"w\":" + std::string(depth, '[') + std::string(depth, ']') + "}", ""));
  CHECK_THROWS_WITH(nn::load_safetensors(path), Contains(path) && Contains("nests JSON deeper than 3 levels"));
  const fs::path corpus = fs::path(__FILE__).parent_path() / "fuzz" / "regressions" / "safetensors";
  CHECK_THROWS_WITH(nn::load_safetensors((corpus / "header_nested_140000_deep_stack_overflow.safetensors").string()),
                    Contains("nests JSON deeper than 3 levels (at byte 7)"));
  write_bytes(path, safetensors_file("{\"w\":" + std::string(depth, '{'), ""));
  CHECK_THROWS_WITH(nn::load_tensors(path), Contains(path) && Contains("nests JSON deeper than 3 levels"));

  // Brackets inside strings (escaped quotes too) are text, not nesting.
  const std::string header =
      R"({"__metadata__":{"[[[[{{{{":"\"[[[[{{{{\\"},"w\"[[[[":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  write_bytes(path, safetensors_file(header, std::string("\x00\x00\x80\x3f", 4)));
  std::map<std::string, std::string> metadata;
  nn::OrderedDict<Tensor> loaded = nn::load_safetensors(path, &metadata);
  CHECK(metadata.at("[[[[{{{{") == "\"[[[[{{{{\\");
  CHECK(loaded.keys() == std::vector<std::string>{"w\"[[[["});
}

TEST_CASE("files: 100,000 tensors save and load", "[reliability][files]") {
  // A header of 100,000 entries took 40 s and grew quadratically (the ordered JSON object and the
  // OrderedDict looked every key up linearly); linear now, about a second. No time bound here: timings
  // belong in bench/, and a sanitizer build or a busy machine is many times slower. A quadratic
  // regression still shows as this test taking minutes.
  TempDir dir("xgrad_files_test");
  const std::string path = dir.file("many.safetensors");
  const int count = 100000;
  std::map<std::string, Tensor> tensors;
  for (int i = 0; i < count; ++i) tensors.emplace(fmt::format("layer{}.weight", i), scalar_tensor(static_cast<double>(i), kFloat32));
  nn::save_tensors(tensors, path);
  std::map<std::string, Tensor> loaded = nn::load_tensors(path);
  nn::OrderedDict<Tensor> as_dict = nn::load_safetensors(path);
  REQUIRE(loaded.size() == static_cast<size_t>(count));
  REQUIRE(as_dict.size() == static_cast<size_t>(count));
  CHECK(loaded.at("layer99999.weight").item<double>() == 99999.0);
  CHECK(as_dict["layer12345.weight"].item<double>() == 12345.0);
  CHECK(as_dict.items().front().first == "layer0.weight");  // header order: the writer's (name order here)
}
