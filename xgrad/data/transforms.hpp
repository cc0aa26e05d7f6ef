#pragma once
/// Batch transforms for images [N, C, H, W]: normalisation, the book's "expand the training data"
/// by random translation, horizontal flips, and composition. Each takes the loader's generator.
#include <random>
#include <vector>

#include "xgrad/data/dataloader.hpp"

namespace xg::data::transforms {

/// (x - mean[c]) / std[c] per channel (one value applies to all channels).
struct Normalize {
  std::vector<double> mean, std;
  Normalize(std::vector<double> mean, std::vector<double> std);
  Tensor operator()(const Tensor& batch, std::mt19937_64& generator) const;
};

/// Shifts each image by a random whole number of pixels in [-max_shift, max_shift] along both axes,
/// filling with `fill`.
struct RandomTranslate {
  int64_t max_shift;
  double fill = 0.0;
  explicit RandomTranslate(int64_t max_shift, double fill = 0.0);
  Tensor operator()(const Tensor& batch, std::mt19937_64& generator) const;
};

/// Mirrors each image left-right with probability p.
struct RandomHorizontalFlip {
  double p;
  explicit RandomHorizontalFlip(double p = 0.5);
  Tensor operator()(const Tensor& batch, std::mt19937_64& generator) const;
};

/// Applies transforms in order.
struct Compose {
  std::vector<BatchTransform> transforms;
  explicit Compose(std::vector<BatchTransform> transforms) : transforms(std::move(transforms)) {}
  Tensor operator()(const Tensor& batch, std::mt19937_64& generator) const;
};

}  // namespace xg::data::transforms
