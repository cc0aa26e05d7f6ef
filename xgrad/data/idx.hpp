#pragma once
/// The idx format of MNIST and Fashion-MNIST: magic 0x0000 <type> <ndim>, ndim big-endian u32
/// sizes, then the data. Files may be raw or gzip-compressed. Everything is validated before use.
#include <cstdint>
#include <string>
#include <vector>

#include "xgrad/autograd/tensor.hpp"

namespace xg::data {

/// An idx file's content: its dimensions and its values (every idx element type fits in a double;
/// ubyte data, by far the most common, is also kept as bytes).
struct IdxArray {
  std::vector<int64_t> shape;
  uint8_t type_code = 0;          ///< 0x08 ubyte, 0x09 byte, 0x0B short, 0x0C int, 0x0D float, 0x0E double
  std::vector<uint8_t> bytes;     ///< the raw big-endian payload
  int64_t numel() const;
  /// As a tensor: ubyte/byte/short/int -> int64 (or float32 when `as_float`), float/double -> float32/64.
  Tensor to_tensor(bool as_float = false) const;
};

/// The element type of an idx type code: "unsigned byte", "signed byte", "int16", "int32", "float32",
/// "float64", or "unknown type".
const char* idx_type_name(uint8_t type_code);

/// Reads and validates an idx file (gzip detected by its magic bytes). Errors name the file and what
/// is wrong: unknown magic or type, a truncated payload, trailing bytes, sizes that overflow.
IdxArray read_idx(const std::string& path);
/// Parses idx bytes already in memory; `name` is used in error messages.
IdxArray parse_idx(const std::vector<uint8_t>& content, const std::string& name);
/// Writes an idx ubyte file (raw, or gzip when the path ends in ".gz"); for tools and tests.
void write_idx_ubyte(const std::string& path, const std::vector<int64_t>& shape, const std::vector<uint8_t>& values);

/// Reads a whole file, transparently gunzipping it when it starts with the gzip magic.
std::vector<uint8_t> read_file_maybe_gzip(const std::string& path);

/// xg::Error naming `op` when `path` exists but is not a regular file: a directory opens "successfully"
/// as a stream and then reads as garbage sizes or as an empty file, a device may never end. Called by
/// every file reader in data/ before it opens the file (a missing file is left to the opener's message).
void check_regular_file(const char* op, const std::string& path);

}  // namespace xg::data
