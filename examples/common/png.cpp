#include "common/png.hpp"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include <xgrad/nn/serialize.hpp>

namespace png {

namespace {

void append_u32_big_endian(std::vector<uint8_t>& out, uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(value >> shift));
}

/// A chunk: big-endian length, 4-letter type, data, CRC-32 of type and data.
void append_chunk(std::vector<uint8_t>& out, const char (&type)[5], const std::vector<uint8_t>& data) {
  append_u32_big_endian(out, static_cast<uint32_t>(data.size()));
  const size_t type_start = out.size();
  out.insert(out.end(), type, type + 4);
  out.insert(out.end(), data.begin(), data.end());
  const uLong crc = crc32(crc32(0L, Z_NULL, 0), out.data() + type_start, static_cast<uInt>(out.size() - type_start));
  append_u32_big_endian(out, static_cast<uint32_t>(crc));
}

}  // namespace

void write_grayscale(const std::string& path, int64_t width, int64_t height, const std::vector<uint8_t>& pixels) {
  // PNG limits each dimension to 2^31 - 1; zlib's one-shot compress2 takes a uLong length. Pictures
  // here are small, so a generous cap keeps every size computation far from overflow.
  constexpr int64_t kMaxSide = 1 << 15;
  XG_CHECK(width > 0 && height > 0 && width <= kMaxSide && height <= kMaxSide,
           "png::write_grayscale: '{}': expected 1 <= width, height <= {}, got {} x {}", path, kMaxSide, width, height);
  XG_CHECK(static_cast<int64_t>(pixels.size()) == width * height,
           "png::write_grayscale: '{}': expected {} x {} = {} pixels, got {}", path, width, height, width * height, pixels.size());

  // Every row starts with its filter type; 0 (none) is enough for small pictures.
  std::vector<uint8_t> raw;
  raw.reserve(static_cast<size_t>((width + 1) * height));
  for (int64_t row = 0; row < height; ++row) {
    raw.push_back(0);
    const auto begin = pixels.begin() + row * width;
    raw.insert(raw.end(), begin, begin + width);
  }
  uLongf compressed_size = compressBound(static_cast<uLong>(raw.size()));
  std::vector<uint8_t> compressed(compressed_size);
  const int status = compress2(compressed.data(), &compressed_size, raw.data(), static_cast<uLong>(raw.size()), Z_BEST_COMPRESSION);
  XG_CHECK(status == Z_OK, "png::write_grayscale: '{}': zlib compress2 failed with status {}", path, status);
  compressed.resize(compressed_size);

  std::vector<uint8_t> header;
  append_u32_big_endian(header, static_cast<uint32_t>(width));
  append_u32_big_endian(header, static_cast<uint32_t>(height));
  header.insert(header.end(), {8, 0, 0, 0, 0});  // bit depth 8, greyscale, deflate, adaptive filters, no interlace

  std::vector<uint8_t> file{0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  append_chunk(file, "IHDR", header);
  append_chunk(file, "IDAT", compressed);
  append_chunk(file, "IEND", {});

  // The library's atomic write: follows symlinks, refuses device nodes, cleans up after killed runs.
  xg::nn::AtomicFile out("png::write_grayscale", path);
  out.write(reinterpret_cast<const char*>(file.data()), file.size());
  out.commit();
}

std::pair<int64_t, int64_t> write_image_grid(const std::string& path, const xg::Tensor& images, int64_t columns, double low,
                                             double high, int64_t padding) {
  XG_CHECK(images.defined() && images.is_floating_point(), "png::write_image_grid: expected floating-point images");
  XG_CHECK(images.dim() == 3 || (images.dim() == 4 && images.size(1) == 1),
           "png::write_image_grid: expected images [N, H, W] or [N, 1, H, W], got {}", xg::shape_string(images.shape()));
  XG_CHECK(columns > 0 && padding >= 0, "png::write_image_grid: expected columns > 0 and padding >= 0, got {} and {}", columns, padding);
  XG_CHECK(high > low, "png::write_image_grid: expected high > low, got [{}, {}]", low, high);
  const int64_t count = images.size(0);
  const int64_t image_height = images.size(images.dim() - 2), image_width = images.size(images.dim() - 1);
  XG_CHECK(count > 0, "png::write_image_grid: no images to write");
  const int64_t used_columns = std::min(columns, count);
  const int64_t rows = (count + used_columns - 1) / used_columns;
  const int64_t width = used_columns * image_width + (used_columns + 1) * padding;
  const int64_t height = rows * image_height + (rows + 1) * padding;

  xg::Tensor values;
  {
    xg::NoGradGuard no_grad;
    values = images.detach().to(xg::kFloat64).contiguous();  // a view (a slice of a batch) read flat
  }
  const double* source = values.data_ptr<double>();
  std::vector<uint8_t> pixels(static_cast<size_t>(width * height), 0);
  for (int64_t index = 0; index < count; ++index) {
    const int64_t top = padding + (index / used_columns) * (image_height + padding);
    const int64_t left = padding + (index % used_columns) * (image_width + padding);
    for (int64_t y = 0; y < image_height; ++y)
      for (int64_t x = 0; x < image_width; ++x) {
        const double value = source[(index * image_height + y) * image_width + x];
        const double scaled = std::isnan(value) ? 0.0 : std::clamp((value - low) / (high - low), 0.0, 1.0);
        pixels[static_cast<size_t>((top + y) * width + left + x)] = static_cast<uint8_t>(std::lround(scaled * 255.0));
      }
  }
  write_grayscale(path, width, height, pixels);
  return {width, height};
}

}  // namespace png
