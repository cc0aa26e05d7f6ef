#include "xgrad/data/idx.hpp"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "xgrad/autograd/kernels.hpp"

namespace xg::data {

namespace {

int element_size(uint8_t type_code) {
  switch (type_code) {
    case 0x08: case 0x09: return 1;
    case 0x0B: return 2;
    case 0x0C: case 0x0D: return 4;
    case 0x0E: return 8;
    default: return 0;
  }
}

uint64_t read_be(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

const char* idx_type_name(uint8_t type_code) {
  switch (type_code) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "int16";
    case 0x0C: return "int32";
    case 0x0D: return "float32";
    case 0x0E: return "float64";
    default: return "unknown type";
  }
}

void check_regular_file(const char* op, const std::string& path) {
  std::error_code error;
  const std::filesystem::file_status status = std::filesystem::status(path, error);  // follows symlinks
  if (error || !std::filesystem::exists(status)) return;
  XG_CHECK(!std::filesystem::is_directory(status), "{}: '{}' is a directory, expected a file", op, path);
  XG_CHECK(std::filesystem::is_regular_file(status), "{}: '{}' is not a regular file (a device, pipe or socket), expected a file", op, path);
}

std::vector<uint8_t> read_file_maybe_gzip(const std::string& path) {
  check_regular_file("read_idx", path);
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  XG_CHECK(in.good(), "read_idx: cannot open '{}'", path);
  // One read of the whole file (a byte-wise istreambuf_iterator copy took seconds for Fashion-MNIST).
  const std::streamoff size = in.tellg();
  XG_CHECK(size >= 0, "read_idx: cannot tell the size of '{}'", path);
  std::vector<uint8_t> raw(static_cast<size_t>(size));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(raw.data()), size);
  XG_CHECK(in.gcount() == size && !in.bad(), "read_idx: error while reading '{}' (got {} of {} bytes)", path, in.gcount(), size);
  if (raw.size() < 2 || raw[0] != 0x1f || raw[1] != 0x8b) return raw;
  // gzip: inflate with automatic header detection (windowBits 15 + 32).
  z_stream stream{};
  XG_CHECK(inflateInit2(&stream, 15 + 32) == Z_OK, "read_idx: zlib could not start inflating '{}'", path);
  std::vector<uint8_t> out;
  // gzip's trailer holds the inflated size mod 2^32: a hint to reserve once (capped, since a corrupt
  // trailer may claim anything; the loop below grows the buffer if the hint was short).
  if (raw.size() >= 18) {
    const size_t hinted = size_t(raw[raw.size() - 4]) | size_t(raw[raw.size() - 3]) << 8 | size_t(raw[raw.size() - 2]) << 16 |
                          size_t(raw[raw.size() - 1]) << 24;
    out.reserve(std::min(hinted, raw.size() * 1032));  // deflate cannot expand more than ~1032:1
  }
  stream.next_in = raw.data();
  stream.avail_in = static_cast<uInt>(raw.size());
  std::vector<uint8_t> chunk(1 << 20);
  int status = Z_OK;
  while (status != Z_STREAM_END) {
    stream.next_out = chunk.data();
    stream.avail_out = static_cast<uInt>(chunk.size());
    status = inflate(&stream, Z_NO_FLUSH);
    if (status != Z_OK && status != Z_STREAM_END) {
      inflateEnd(&stream);
      XG_ERROR("read_idx: '{}' is not a valid gzip stream (truncated or corrupt; zlib status {})", path, status);
    }
    out.insert(out.end(), chunk.data(), chunk.data() + (chunk.size() - stream.avail_out));
    if (status != Z_STREAM_END && stream.avail_in == 0 && stream.avail_out != 0) {
      inflateEnd(&stream);
      XG_ERROR("read_idx: '{}' ends in the middle of its gzip stream (truncated)", path);
    }
    XG_CHECK(out.size() <= (size_t{4} << 30), "read_idx: '{}' inflates to more than 4 GiB; refusing", path);
  }
  inflateEnd(&stream);
  return out;
}

IdxArray parse_idx(const std::vector<uint8_t>& content, const std::string& name) {
  XG_CHECK(content.size() >= 4, "read_idx: '{}' is too short to be an idx file ({} bytes)", name, content.size());
  XG_CHECK(content[0] == 0 && content[1] == 0, "read_idx: '{}' does not start with the idx magic 0x0000 (got 0x{:02x}{:02x})", name,
           content[0], content[1]);
  IdxArray result;
  result.type_code = content[2];
  const int item = element_size(result.type_code);
  XG_CHECK(item > 0, "read_idx: '{}' has unknown element type 0x{:02x}", name, result.type_code);
  const int ndim = content[3];
  XG_CHECK(ndim >= 1, "read_idx: '{}' declares 0 dimensions", name);
  const size_t header = 4 + 4 * static_cast<size_t>(ndim);
  XG_CHECK(content.size() >= header, "read_idx: '{}' is truncated inside its header ({} dimensions need {} bytes, file has {})", name, ndim,
           header, content.size());
  // The product of the sizes bounds the payload; the product of the non-zero sizes must be bounded too,
  // or a shape such as [0, 2^32 - 1, 2^32 - 1, 2^32 - 1] (no elements) overflows the strides computed
  // for it (signed overflow: undefined behaviour, found by fuzz_idx).
  constexpr uint64_t kMaxElements = uint64_t{1} << 40;
  uint64_t numel = 1, nonzero_product = 1;
  for (int d = 0; d < ndim; ++d) {
    uint64_t size = read_be(content.data() + 4 + 4 * d, 4);
    result.shape.push_back(static_cast<int64_t>(size));
    if (size == 0) {
      numel = 0;
      continue;
    }
    XG_CHECK(nonzero_product <= kMaxElements / size, "read_idx: '{}' declares sizes whose product overflows (shape so far {})", name,
             shape_string(result.shape));
    nonzero_product *= size;
    numel *= size;
  }
  const uint64_t payload = numel * static_cast<uint64_t>(item);
  XG_CHECK(content.size() - header >= payload, "read_idx: '{}' is truncated: shape {} needs {} data bytes, the file has {}", name,
           shape_string(result.shape), payload, content.size() - header);
  XG_CHECK(content.size() - header == payload, "read_idx: '{}' has {} unexpected trailing bytes after the data of shape {}", name,
           content.size() - header - payload, shape_string(result.shape));
  result.bytes.assign(content.begin() + static_cast<std::ptrdiff_t>(header), content.end());
  return result;
}

IdxArray read_idx(const std::string& path) { return parse_idx(read_file_maybe_gzip(path), path); }

int64_t IdxArray::numel() const { return detail::shape_numel(shape); }

Tensor IdxArray::to_tensor(bool as_float) const {
  const int64_t n = numel();
  const int item = element_size(type_code);
  auto value = [&](int64_t i) -> double {
    const uint8_t* p = bytes.data() + i * item;
    switch (type_code) {
      case 0x08: return p[0];
      case 0x09: return static_cast<int8_t>(p[0]);
      case 0x0B: return static_cast<int16_t>(read_be(p, 2));
      case 0x0C: return static_cast<int32_t>(read_be(p, 4));
      case 0x0D: {
        uint32_t bits = static_cast<uint32_t>(read_be(p, 4));
        float f;
        std::memcpy(&f, &bits, 4);
        return f;
      }
      default: {
        uint64_t bits = read_be(p, 8);
        double d;
        std::memcpy(&d, &bits, 8);
        return d;
      }
    }
  };
  const bool floating = as_float || type_code == 0x0D || type_code == 0x0E;
  const Dtype dtype = !floating ? kInt64 : (type_code == 0x0E ? kFloat64 : kFloat32);
  Tensor out = empty(shape, dtype);
  detail::dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* dst = out.contiguous_data<T>();
    if (type_code == 0x08)
      for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<T>(bytes[i]);
    else
      for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<T>(value(i));
  });
  return out;
}

void write_idx_ubyte(const std::string& path, const std::vector<int64_t>& shape, const std::vector<uint8_t>& values) {
  XG_CHECK(!shape.empty() && shape.size() < 256, "write_idx_ubyte: expected 1 to 255 dimensions, got {}", shape.size());
  for (int64_t size : shape)  // each size is stored as a big-endian u32
    XG_CHECK(size >= 0 && size <= 0xffffffffLL, "write_idx_ubyte: sizes must be in [0, 2^32 - 1], got shape {}", shape_string(shape));
  const int64_t numel = detail::checked_numel("write_idx_ubyte", shape);  // a wrapped product could match values.size()
  XG_CHECK(numel == static_cast<int64_t>(values.size()), "write_idx_ubyte: shape {} needs {} values, got {}", shape_string(shape), numel,
           values.size());
  std::vector<uint8_t> content{0, 0, 0x08, static_cast<uint8_t>(shape.size())};
  for (int64_t s : shape)
    for (int shift = 24; shift >= 0; shift -= 8) content.push_back(static_cast<uint8_t>((static_cast<uint64_t>(s) >> shift) & 0xff));
  content.insert(content.end(), values.begin(), values.end());
  const bool gzip = path.size() > 3 && path.compare(path.size() - 3, 3, ".gz") == 0;
  if (gzip) {
    gzFile file = gzopen(path.c_str(), "wb");
    XG_CHECK(file != nullptr, "write_idx_ubyte: cannot open '{}' for writing", path);
    int written = gzwrite(file, content.data(), static_cast<unsigned>(content.size()));
    int closed = gzclose(file);
    XG_CHECK(written == static_cast<int>(content.size()) && closed == Z_OK, "write_idx_ubyte: failed writing '{}'", path);
    return;
  }
  std::ofstream out(path, std::ios::binary);
  XG_CHECK(out.good(), "write_idx_ubyte: cannot open '{}' for writing", path);
  out.write(reinterpret_cast<const char*>(content.data()), static_cast<std::streamsize>(content.size()));
  XG_CHECK(out.good(), "write_idx_ubyte: failed writing '{}'", path);
}

}  // namespace xg::data
