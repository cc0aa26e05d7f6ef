#include "xgrad/data/transforms.hpp"

#include <cmath>

#include "xgrad/autograd/kernels.hpp"

namespace xg::data::transforms {

namespace {
void check_images(const char* op, const Tensor& batch) {
  XG_CHECK(batch.defined() && batch.dim() == 4, "{}: expected images [N, C, H, W], got shape {}", op,
           batch.defined() ? shape_string(batch.shape()) : "undefined");
  XG_CHECK(batch.is_floating_point(), "{}: expected float images, got {}", op, batch.dtype());
}
}  // namespace

Normalize::Normalize(std::vector<double> m, std::vector<double> s) : mean(std::move(m)), std(std::move(s)) {
  XG_CHECK(!mean.empty() && mean.size() == std.size(), "Normalize: mean and std need the same non-zero length, got {} and {}", mean.size(),
           std.size());
  for (double v : std) XG_CHECK(v > 0 && std::isfinite(v), "Normalize: std must be positive and finite, got {}", v);
  // A NaN or infinite mean would make the whole channel NaN or inf (torchvision does not check it).
  for (double v : mean) XG_CHECK(std::isfinite(v), "Normalize: mean must be finite, got {}", v);
}

Tensor Normalize::operator()(const Tensor& batch, std::mt19937_64&) const {
  check_images("Normalize", batch);
  const int64_t channels = batch.size(1);
  XG_CHECK(mean.size() == 1 || static_cast<int64_t>(mean.size()) == channels, "Normalize: {} mean/std values for {} channels", mean.size(),
           channels);
  Tensor out = batch.clone();
  detail::dispatch_floating("Normalize", out, [&](auto tag) {
    using T = decltype(tag);
    T* p = out.contiguous_data<T>();
    const int64_t plane = batch.size(2) * batch.size(3);
    for (int64_t n = 0; n < batch.size(0); ++n)
      for (int64_t c = 0; c < channels; ++c) {
        const size_t k = mean.size() == 1 ? 0 : static_cast<size_t>(c);
        const T m = static_cast<T>(mean[k]), inv = static_cast<T>(1.0 / std[k]);
        T* q = p + (n * channels + c) * plane;
        for (int64_t i = 0; i < plane; ++i) q[i] = (q[i] - m) * inv;
      }
  });
  return out;
}

RandomTranslate::RandomTranslate(int64_t shift, double fill_value) : max_shift(shift), fill(fill_value) {
  XG_CHECK(max_shift >= 0, "RandomTranslate: max_shift must be non-negative, got {}", max_shift);
}

Tensor RandomTranslate::operator()(const Tensor& batch, std::mt19937_64& generator) const {
  check_images("RandomTranslate", batch);
  const int64_t N = batch.size(0), C = batch.size(1), H = batch.size(2), W = batch.size(3);
  Tensor out = empty(batch.shape(), batch.dtype());
  std::uniform_int_distribution<int64_t> shift(-max_shift, max_shift);
  detail::dispatch_floating("RandomTranslate", batch, [&](auto tag) {
    using T = decltype(tag);
    const Tensor src_dense = xg::detail::dense(batch);
    const T* src = src_dense.contiguous_data<T>();
    T* dst = out.contiguous_data<T>();
    for (int64_t n = 0; n < N; ++n) {
      const int64_t dy = shift(generator), dx = shift(generator);
      for (int64_t c = 0; c < C; ++c) {
        const T* s = src + (n * C + c) * H * W;
        T* d = dst + (n * C + c) * H * W;
        for (int64_t y = 0; y < H; ++y)
          for (int64_t x = 0; x < W; ++x) {
            const int64_t sy = y - dy, sx = x - dx;
            d[y * W + x] = (sy >= 0 && sy < H && sx >= 0 && sx < W) ? s[sy * W + sx] : static_cast<T>(fill);
          }
      }
    }
  });
  return out;
}

RandomHorizontalFlip::RandomHorizontalFlip(double probability) : p(probability) {
  XG_CHECK(p >= 0 && p <= 1, "RandomHorizontalFlip: p must be in [0, 1], got {}", p);
}

Tensor RandomHorizontalFlip::operator()(const Tensor& batch, std::mt19937_64& generator) const {
  check_images("RandomHorizontalFlip", batch);
  const int64_t N = batch.size(0), C = batch.size(1), H = batch.size(2), W = batch.size(3);
  Tensor out = batch.clone();
  std::uniform_real_distribution<double> coin(0.0, 1.0);
  detail::dispatch_floating("RandomHorizontalFlip", out, [&](auto tag) {
    using T = decltype(tag);
    T* p_out = out.contiguous_data<T>();
    for (int64_t n = 0; n < N; ++n) {
      if (!(coin(generator) < p)) continue;
      for (int64_t row = 0; row < C * H; ++row) {
        T* r = p_out + (n * C * H + row) * W;
        std::reverse(r, r + W);
      }
    }
  });
  return out;
}

Tensor Compose::operator()(const Tensor& batch, std::mt19937_64& generator) const {
  Tensor x = batch;
  for (const BatchTransform& t : transforms) x = t(x, generator);
  return x;
}

}  // namespace xg::data::transforms
