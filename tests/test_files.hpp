#pragma once
// Files for the tests that write checkpoints: a fresh directory per test, whole-file reads/writes, and
// the documented checksum computed independently.
#include <catch2/catch.hpp>

#include <unistd.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <system_error>
#include <vector>

#include <fmt/format.h>
#include <xgrad/autograd/tensor.hpp>

namespace xg::test {

/// A fresh directory per test under the system's temp directory, removed at the end.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& prefix) {
    static int counter = 0;
    path = std::filesystem::temp_directory_path() / (prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path / name).string(); }
  /// Leftover temporary files of an atomic write (".tmp." infix) anywhere below this directory.
  std::vector<std::string> temp_files() const {
    std::vector<std::string> found;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(path))
      if (entry.path().filename().string().find(".tmp.") != std::string::npos) found.push_back(entry.path().string());
    return found;
  }
};

/// The checksum as serialize.hpp documents it (every file the library writes carries it), written independently: CRC-32 (zlib) of each tensor's
/// name, "dtype shape" and bytes in name order, then each metadata key and value but "crc32"; every string
/// is followed by its NUL byte. (Little-endian host: the bytes in memory are the file's.)
inline std::string documented_crc32(const std::map<std::string, Tensor>& tensors, const std::map<std::string, std::string>& metadata) {
  uLong crc = crc32(0L, Z_NULL, 0);
  auto text = [&](const std::string& s) { crc = crc32(crc, reinterpret_cast<const Bytef*>(s.c_str()), static_cast<uInt>(s.size() + 1)); };
  for (const auto& [name, t] : tensors) {
    text(name);
    text(fmt::format("{} {}", dtype_name(t.dtype()), shape_string(t.shape())));
    const Bytef* bytes = t.dtype() == kFloat32   ? reinterpret_cast<const Bytef*>(t.data_ptr<float>())
                         : t.dtype() == kFloat64 ? reinterpret_cast<const Bytef*>(t.data_ptr<double>())
                                                 : reinterpret_cast<const Bytef*>(t.data_ptr<int64_t>());
    crc = crc32(crc, bytes, static_cast<uInt>(t.numel() * (t.dtype() == kFloat32 ? 4 : 8)));
  }
  for (const auto& [key, value] : metadata) {
    if (key == "crc32") continue;
    text(key);
    text(value);
  }
  return fmt::format("{:08x}", static_cast<uint32_t>(crc));
}

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

}  // namespace xg::test
