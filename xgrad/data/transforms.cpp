#include "xgrad/data/transforms.hpp"

#include <cmath>

#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/autograd/kernels.hpp"

namespace xg::data::transforms {

namespace {
/// Images as a batch [N, C, H, W]: a single image [C, H, W] becomes a batch of one (a view).
Tensor as_image_batch(const char* op, const Tensor& images) {
  XG_CHECK(images.defined() && (images.dim() == 4 || images.dim() == 3),
           "{}: expected images [N, C, H, W] or one image [C, H, W], got shape {}", op,
           images.defined() ? shape_string(images.shape()) : "undefined");
  XG_CHECK(images.is_floating_point(), "{}: expected float images, got {}", op, images.dtype());
  return images.dim() == 4 ? images : images.unsqueeze(0);
}
}  // namespace

Example<> Stack<Example<>>::apply_batch(std::vector<Example<>> examples) {
  XG_CHECK(!examples.empty(), "Stack: expected at least one example in the batch, got none");
  TensorList data, targets;
  data.reserve(examples.size());
  targets.reserve(examples.size());
  for (Example<>& e : examples) {
    data.push_back(std::move(e.data));
    targets.push_back(std::move(e.target));
  }
  return {stack(data), stack(targets)};
}

TensorExample Stack<TensorExample>::apply_batch(std::vector<TensorExample> examples) {
  XG_CHECK(!examples.empty(), "Stack: expected at least one example in the batch, got none");
  TensorList data;
  data.reserve(examples.size());
  for (TensorExample& e : examples) data.push_back(std::move(e.data));
  return TensorExample(stack(data));
}

detail::Normalization::Normalization(ArrayRef<double> mean, ArrayRef<double> stddev) {
  XG_CHECK(!mean.empty() && mean.size() == stddev.size(), "Normalize: mean and stddev need the same non-zero length, got {} and {}",
           mean.size(), stddev.size());
  // libtorch keeps both as float32 tensors; the values are rounded to float32 once, here.
  for (double v : stddev) {
    XG_CHECK(v > 0 && std::isfinite(v) && static_cast<float>(v) > 0 && std::isfinite(static_cast<float>(v)),
             "Normalize: std must be positive and finite (in float32), got {}", v);
    stddev_.push_back(static_cast<float>(v));
  }
  // A NaN or infinite mean would make the whole channel NaN or inf (torchvision does not check it).
  for (double v : mean) {
    XG_CHECK(std::isfinite(v) && std::isfinite(static_cast<float>(v)), "Normalize: mean must be finite (in float32), got {}", v);
    mean_.push_back(static_cast<float>(v));
  }
}

namespace {
Tensor channel_tensor(const std::vector<float>& values) {
  Tensor t = empty({static_cast<int64_t>(values.size()), 1, 1}, kFloat32);
  std::copy(values.begin(), values.end(), t.contiguous_data<float>());
  return t;
}
}  // namespace

Tensor detail::Normalization::mean_tensor() const { return channel_tensor(mean_); }
Tensor detail::Normalization::stddev_tensor() const { return channel_tensor(stddev_); }

Tensor detail::Normalization::operator()(const Tensor& input) const {
  XG_CHECK(input.defined(), "Normalize: the input is undefined");
  XG_CHECK(input.is_floating_point(), "Normalize: expected float data, got {} of shape {}", input.dtype(), shape_string(input.shape()));
  const int64_t count = static_cast<int64_t>(mean_.size());
  if (count > 1) {
    // libtorch would broadcast a single channel to C channels (grayscale silently becoming RGB); that
    // surprise is an error here. With one value, [H, W] data becomes [1, H, W] as in libtorch.
    XG_CHECK(input.dim() >= 3, "Normalize: {} mean/std values need data [..., C, H, W] with C = {}, got shape {}", count, count,
             shape_string(input.shape()));
    XG_CHECK(input.size(-3) == count, "Normalize: {} mean/std values but the data has {} channel(s) (shape {}); expected [..., C, H, W] with C = {}",
             count, input.size(-3), shape_string(input.shape()), count);
  }
  const bool fast = input.dim() >= 3 && input.is_contiguous() &&
                    !(autograd::GradMode::is_enabled() && input.requires_grad());
  if (!fast) {
    // The general case (broadcasting a single channel, fewer than three dims, non-contiguous data,
    // or a differentiable input): PyTorch's input.sub(mean).div(stddev) with ops.
    Tensor m = mean_tensor().to(input.dtype()), s = stddev_tensor().to(input.dtype());
    return div(sub(input, m), s);
  }
  // One pass over contiguous data; same arithmetic as sub then div (float32 constants, input's type).
  Tensor out = empty(input.shape(), input.dtype());
  const int64_t channels = input.size(-3), plane = input.size(-2) * input.size(-1);
  const int64_t outer = channels == 0 || plane == 0 ? 0 : input.numel() / (channels * plane);
  xg::detail::dispatch_floating("Normalize", input, [&](auto tag) {
    using T = decltype(tag);
    const T* src = input.contiguous_data<T>();
    T* dst = out.contiguous_data<T>();
    for (int64_t n = 0; n < outer; ++n)
      for (int64_t c = 0; c < channels; ++c) {
        const size_t k = count == 1 ? 0 : static_cast<size_t>(c);
        const T m = static_cast<T>(mean_[k]), s = static_cast<T>(stddev_[k]);
        const int64_t base = (n * channels + c) * plane;
        for (int64_t i = 0; i < plane; ++i) dst[base + i] = (src[base + i] - m) / s;
      }
  });
  return out;
}

RandomTranslate::RandomTranslate(int64_t shift, double fill_value) : max_shift(shift), fill(fill_value) {
  XG_CHECK(max_shift >= 0, "RandomTranslate: max_shift must be non-negative, got {}", max_shift);
}

Tensor RandomTranslate::operator()(const Tensor& images, std::mt19937_64& generator) const {
  const Tensor batch = as_image_batch("RandomTranslate", images);
  const int64_t N = batch.size(0), C = batch.size(1), H = batch.size(2), W = batch.size(3);
  Tensor out = empty(batch.shape(), batch.dtype());
  std::uniform_int_distribution<int64_t> shift(-max_shift, max_shift);
  xg::detail::dispatch_floating("RandomTranslate", batch, [&](auto tag) {
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
  return images.dim() == 3 ? out.squeeze(0) : out;
}

RandomHorizontalFlip::RandomHorizontalFlip(double probability) : p(probability) {
  XG_CHECK(p >= 0 && p <= 1, "RandomHorizontalFlip: p must be in [0, 1], got {}", p);
}

Tensor RandomHorizontalFlip::operator()(const Tensor& images, std::mt19937_64& generator) const {
  const Tensor batch = as_image_batch("RandomHorizontalFlip", images);
  const int64_t N = batch.size(0), C = batch.size(1), H = batch.size(2), W = batch.size(3);
  Tensor out = batch.clone();
  std::uniform_real_distribution<double> coin(0.0, 1.0);
  xg::detail::dispatch_floating("RandomHorizontalFlip", out, [&](auto tag) {
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
  return images.dim() == 3 ? out.squeeze(0) : out;
}

Tensor Compose::operator()(const Tensor& batch, std::mt19937_64& generator) const {
  Tensor x = batch;
  for (const data::BatchTransform& t : transforms) x = t(x, generator);
  return x;
}

}  // namespace xg::data::transforms
