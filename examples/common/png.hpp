#pragma once
/// A minimal PNG writer (8-bit greyscale, zlib-compressed) for the examples' image outputs, and a helper
/// that tiles a batch of images into one grid picture.
#include <cstdint>
#include <string>
#include <vector>

#include <xgrad/xgrad.hpp>

namespace png {

/// Writes an 8-bit greyscale PNG: `pixels` holds height rows of width bytes, row-major (0 = black).
/// The file is written atomically (xg::nn::AtomicFile), so a reader never sees half a picture.
/// Throws xg::Error naming the file when the sizes are inconsistent or the file cannot be written.
void write_grayscale(const std::string& path, int64_t width, int64_t height, const std::vector<uint8_t>& pixels);

/// Tiles images [N, H, W] or [N, 1, H, W] (any floating dtype) into a grid of `columns` columns
/// separated by `padding` pixels of black, mapping [low, high] to black..white (values outside are
/// clamped), and writes it as a PNG. Returns the grid's (width, height).
std::pair<int64_t, int64_t> write_image_grid(const std::string& path, const xg::Tensor& images, int64_t columns, double low = 0.0,
                                             double high = 1.0, int64_t padding = 2);

}  // namespace png
