// Normalisation layers. batch_norm is a fused primitive: one pass over the input for the per-channel
// mean and variance, one for normalise + affine; its backward is one pass for the two per-channel
// sums and one for the input gradient. When the backward itself is being recorded (create_graph) it
// switches to the same formula written with xgrad ops, so second derivatives work.
// LayerNorm and GroupNorm are composites of xgrad ops.
#include "xgrad/nn/normalization.hpp"

#include <cmath>

#include "xgrad/autograd/kernels.hpp"
#include "xgrad/autograd/parallel.hpp"

namespace xg::nn {

using autograd::BackwardContext;
using autograd::record;
using autograd::should_record;

namespace {

/// One eps check for the functional forms and the modules: NaN (which fails the comparison) or a
/// negative eps would silently turn every output into NaN.
void check_eps(const char* op, double eps) {
  XG_CHECK(eps >= 0, "{}: eps must be a non-negative number, got {}", op, eps);
}

/// The input seen as [outer = N, channels = C, inner = prod(dims after 1)].
struct ChannelLayout {
  int64_t outer = 1, channels = 1, inner = 1;
  int64_t per_channel() const { return outer * inner; }
};

ChannelLayout channel_layout(const Shape& shape) {
  ChannelLayout layout;
  layout.outer = shape[0];
  layout.channels = shape[1];
  for (size_t d = 2; d < shape.size(); ++d) layout.inner *= shape[d];
  return layout;
}

/// Broadcast shape of a per-channel [C] tensor against an input of rank ndim: [1, C, 1, ...].
Shape channel_shape(int64_t channels, int64_t ndim) {
  Shape shape(static_cast<size_t>(ndim), 1);
  shape[1] = channels;
  return shape;
}

/// Every dim but the channel dim (1): the batch-norm reduction dims.
std::vector<int64_t> non_channel_dims(int64_t ndim) {
  std::vector<int64_t> dims{0};
  for (int64_t d = 2; d < ndim; ++d) dims.push_back(d);
  return dims;
}

/// Per-channel sum and sum of squares of (x - shift[c]), accumulated within a contiguous run in T
/// (vectorised) and across runs in double. Shifting by a sample of the channel keeps sum-of-squares
/// cancellation harmless even when |mean| >> std.
/// Channels are independent: the kernels below split them (reductions) or the batch (maps) over
/// threads. Each channel's sums run over n in the same order whatever the split, so results do not
/// depend on the thread count.
inline int64_t channel_grain(const ChannelLayout& l) {
  return std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, l.outer * l.inner));
}
inline int64_t batch_grain(const ChannelLayout& l) {
  return std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, l.channels * l.inner));
}

template <class T>
void channel_moments(const T* x, const ChannelLayout& l, const T* shift, double* sum, double* sum_sq) {
  parallel_for(0, l.channels, channel_grain(l), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      double total = 0, total_sq = 0;
      const T k = shift[c];
      for (int64_t n = 0; n < l.outer; ++n) {
        const T* p = x + (n * l.channels + c) * l.inner;
        if (l.inner == 1) {
          const double d = static_cast<double>(p[0]) - static_cast<double>(k);
          total += d;
          total_sq += d * d;
          continue;
        }
        T s = 0, q = 0;
#pragma omp simd reduction(+ : s, q)
        for (int64_t i = 0; i < l.inner; ++i) {
          const T d = p[i] - k;
          s += d;
          q += d * d;
        }
        total += static_cast<double>(s);
        total_sq += static_cast<double>(q);
      }
      sum[c] = total;
      sum_sq[c] = total_sq;
    }
  });
}

/// out = x * scale[c] + offset[c] per channel.
template <class T>
void channel_affine(const T* x, const ChannelLayout& l, const T* scale, const T* offset, T* out) {
  parallel_for(0, l.outer, batch_grain(l), [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      const int64_t base = n * l.channels * l.inner;
      if (l.inner == 1) {
#pragma omp simd
        for (int64_t c = 0; c < l.channels; ++c) out[base + c] = x[base + c] * scale[c] + offset[c];
        continue;
      }
      for (int64_t c = 0; c < l.channels; ++c) {
        const T* p = x + base + c * l.inner;
        T* q = out + base + c * l.inner;
        const T a = scale[c], b = offset[c];
#pragma omp simd
        for (int64_t i = 0; i < l.inner; ++i) q[i] = p[i] * a + b;
      }
    }
  });
}

/// Per-channel sum(gy) and sum(gy * (x - mean[c])).
template <class T>
void channel_grad_sums(const T* gy, const T* x, const ChannelLayout& l, const T* mean, double* sum_gy, double* sum_gy_xc) {
  parallel_for(0, l.channels, channel_grain(l), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      double total = 0, total_xc = 0;
      const T m = mean[c];
      for (int64_t n = 0; n < l.outer; ++n) {
        const int64_t at = (n * l.channels + c) * l.inner;
        if (l.inner == 1) {
          const double g = gy[at];
          total += g;
          total_xc += g * (static_cast<double>(x[at]) - static_cast<double>(m));
          continue;
        }
        const T* g = gy + at;
        const T* p = x + at;
        T s = 0, sx = 0;
#pragma omp simd reduction(+ : s, sx)
        for (int64_t i = 0; i < l.inner; ++i) {
          s += g[i];
          sx += g[i] * (p[i] - m);
        }
        total += static_cast<double>(s);
        total_xc += static_cast<double>(sx);
      }
      sum_gy[c] = total;
      sum_gy_xc[c] = total_xc;
    }
  });
}

/// out = a[c] * gy + b[c] * x + d[c].
template <class T>
void channel_combine(const T* gy, const T* x, const ChannelLayout& l, const T* a, const T* b, const T* d, T* out) {
  parallel_for(0, l.outer, batch_grain(l), [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      const int64_t base = n * l.channels * l.inner;
      if (l.inner == 1) {
#pragma omp simd
        for (int64_t c = 0; c < l.channels; ++c) out[base + c] = a[c] * gy[base + c] + b[c] * x[base + c] + d[c];
        continue;
      }
      for (int64_t c = 0; c < l.channels; ++c) {
        const T* g = gy + base + c * l.inner;
        const T* p = x + base + c * l.inner;
        T* q = out + base + c * l.inner;
        const T ac = a[c], bc = b[c], dc = d[c];
#pragma omp simd
        for (int64_t i = 0; i < l.inner; ++i) q[i] = ac * g[i] + bc * p[i] + dc;
      }
    }
  });
}

template <class T>
const T* data_or_null(const Tensor& t) {
  return t.defined() ? t.contiguous_data<T>() : nullptr;
}

/// The training-mode backward written with xgrad ops (recomputing the statistics from x so that they
/// are differentiated too): used when the backward pass is itself recorded.
TensorList batch_norm_training_backward_ops(const BackwardContext& ctx, const Tensor& gy, const Tensor& x, const Tensor& weight,
                                            double eps) {
  const int64_t ndim = x.dim();
  const std::vector<int64_t> dims = non_channel_dims(ndim);
  const Shape broadcast = channel_shape(x.size(1), ndim);
  Tensor centered = sub(x, mean(x, dims, true));
  Tensor invstd = pow(add(mean(mul(centered, centered), dims, true), eps), -0.5);
  Tensor normalized = mul(centered, invstd);
  Tensor gx, gw, gb;
  if (ctx.needs_grad(0)) {
    Tensor g_normalized = weight.defined() ? mul(gy, reshape(weight, broadcast)) : gy;
    // d/dx of (x - mean) * invstd: invstd * (g - mean(g) - x_hat * mean(g * x_hat)).
    gx = mul(invstd, sub(sub(g_normalized, mean(g_normalized, dims, true)), mul(normalized, mean(mul(g_normalized, normalized), dims, true))));
  }
  if (ctx.needs_grad(1)) gw = sum(mul(gy, normalized), dims);
  if (ctx.needs_grad(2)) gb = sum(gy, dims);
  return {gx, gw, gb};
}

/// The training-mode backward as two fused passes (the common case: backward not recorded).
TensorList batch_norm_training_backward_fused(const BackwardContext& ctx, const Tensor& gy, const Tensor& x, const Tensor& weight,
                                              const Tensor& saved_mean, const Tensor& saved_invstd) {
  const Shape shape = x.shape();
  const ChannelLayout l = channel_layout(shape);
  const double count = static_cast<double>(l.per_channel());
  return detail::dispatch_floating("batch_norm", x, [&](auto tag) {
    using T = decltype(tag);
    const Tensor px_dense = xg::detail::dense(x);
    const T* px = px_dense.contiguous_data<T>();
    const Tensor pg_dense = xg::detail::dense(gy);
    const T* pg = pg_dense.contiguous_data<T>();
    const Tensor mean_dense = xg::detail::dense(saved_mean);
    const T* mean = mean_dense.contiguous_data<T>();
    const Tensor invstd_dense = xg::detail::dense(saved_invstd);
    const T* invstd = invstd_dense.contiguous_data<T>();
    const T* w = data_or_null<T>(weight);
    std::vector<double> sum_gy(static_cast<size_t>(l.channels)), sum_gy_xc(static_cast<size_t>(l.channels));
    channel_grad_sums(pg, px, l, mean, sum_gy.data(), sum_gy_xc.data());
    Tensor gx, gw, gb;
    if (ctx.needs_grad(0)) {
      // gx = a * (gy - sum_gy / M - (x - mean) * k), k = invstd^2 * sum_gy_xc / M, a = w * invstd,
      // regrouped as a * gy + b * x + d so the pass is one multiply-add chain per element.
      std::vector<T> a(static_cast<size_t>(l.channels)), b(a.size()), d(a.size());
      for (int64_t c = 0; c < l.channels; ++c) {
        const double is = invstd[c];
        const double ac = (w ? static_cast<double>(w[c]) : 1.0) * is;
        const double k = is * is * sum_gy_xc[c] / count;
        a[c] = static_cast<T>(ac);
        b[c] = static_cast<T>(-ac * k);
        d[c] = static_cast<T>(ac * (static_cast<double>(mean[c]) * k - sum_gy[c] / count));
      }
      Array<T> out = detail::new_array<T>(shape);
      channel_combine(pg, px, l, a.data(), b.data(), d.data(), out.data());
      gx = detail::make_tensor(std::move(out));
    }
    if (ctx.needs_grad(1)) {
      Array<T> out = detail::new_array<T>({l.channels});
      for (int64_t c = 0; c < l.channels; ++c) out.data()[c] = static_cast<T>(sum_gy_xc[c] * static_cast<double>(invstd[c]));
      gw = detail::make_tensor(std::move(out));
    }
    if (ctx.needs_grad(2)) {
      Array<T> out = detail::new_array<T>({l.channels});
      for (int64_t c = 0; c < l.channels; ++c) out.data()[c] = static_cast<T>(sum_gy[c]);
      gb = detail::make_tensor(std::move(out));
    }
    return TensorList{gx, gw, gb};
  });
}

void check_per_channel(const char* what, const Tensor& t, const Tensor& input, int64_t channels) {
  if (!t.defined()) return;
  XG_CHECK(t.dim() == 1 && t.numel() == channels, "batch_norm: expected {} of shape [{}] (one value per channel), got shape {}", what,
           channels, shape_string(t.shape()));
  XG_CHECK(t.dtype() == input.dtype(), "batch_norm: expected {} of dtype {} (the input's), got {}", what, input.dtype(), t.dtype());
}

}  // namespace

namespace functional {

Tensor batch_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var, const BatchNormFuncOptions& options) {
  XG_CHECK(input.defined(), "batch_norm: the input tensor is undefined");
  XG_CHECK(input.is_floating_point(), "batch_norm: expected a float32 or float64 input, got {}", input.dtype());
  XG_CHECK(input.dim() >= 2, "batch_norm: expected an input of at least 2 dimensions [N, C, *], got shape {}", shape_string(input.shape()));
  const Shape shape = input.shape();
  const ChannelLayout l = channel_layout(shape);
  const Tensor& weight = options.weight();
  const Tensor& bias = options.bias();
  check_per_channel("weight", weight, input, l.channels);
  check_per_channel("bias", bias, input, l.channels);
  check_per_channel("running_mean", running_mean, input, l.channels);
  check_per_channel("running_var", running_var, input, l.channels);
  XG_CHECK(running_mean.defined() == running_var.defined(), "batch_norm: running_mean and running_var must both be given or both be undefined");
  const bool training = options.training();
  const double eps = options.eps(), momentum = options.momentum();
  check_eps("batch_norm", eps);
  if (!training)
    XG_CHECK(running_mean.defined(), "batch_norm: running_mean and running_var are required when training is false (use training = true for batch statistics)");
  // PyTorch: an empty batch normalises nothing. The result is empty but still connected to input,
  // weight and bias (zero gradients); the running statistics are left alone. Only exactly one value
  // per channel is an error in training (its variance is undefined).
  if (input.numel() == 0) {
    const Shape broadcast = channel_shape(l.channels, input.dim());
    Tensor out = input.clone();
    if (weight.defined()) out = mul(out, reshape(weight, broadcast));
    if (bias.defined()) out = add(out, reshape(bias, broadcast));
    return out;
  }
  if (training)
    XG_CHECK(l.per_channel() != 1, "batch_norm: expected more than 1 value per channel when training, got input of shape {}",
             shape_string(shape));

  Tensor saved_mean, saved_invstd;
  Tensor out = detail::dispatch_floating("batch_norm", input, [&](auto tag) {
    using T = decltype(tag);
    const Tensor x_dense = xg::detail::dense(input);
    const T* x = x_dense.contiguous_data<T>();
    const T* w = data_or_null<T>(weight);
    const T* b = data_or_null<T>(bias);
    Array<T> mean_array = detail::new_array<T>({l.channels}), invstd_array = detail::new_array<T>({l.channels});
    T* mean = mean_array.data();
    T* invstd = invstd_array.data();
    if (training) {
      std::vector<T> shift(static_cast<size_t>(l.channels));
      for (int64_t c = 0; c < l.channels; ++c) shift[c] = l.per_channel() > 0 ? x[c * l.inner] : T(0);
      std::vector<double> sum(static_cast<size_t>(l.channels)), sum_sq(shift.size());
      channel_moments(x, l, shift.data(), sum.data(), sum_sq.data());
      const double count = static_cast<double>(l.per_channel());
      T* rm = running_mean.defined() ? running_mean.contiguous_data<T>() : nullptr;
      T* rv = running_var.defined() ? running_var.contiguous_data<T>() : nullptr;
      for (int64_t c = 0; c < l.channels; ++c) {
        const double shifted_mean = sum[c] / count;
        const double var = std::max(0.0, sum_sq[c] / count - shifted_mean * shifted_mean);  // biased
        const double m = static_cast<double>(shift[c]) + shifted_mean;
        mean[c] = static_cast<T>(m);
        invstd[c] = static_cast<T>(1.0 / std::sqrt(var + eps));
        if (rm) {
          rm[c] = static_cast<T>((1.0 - momentum) * static_cast<double>(rm[c]) + momentum * m);
          rv[c] = static_cast<T>((1.0 - momentum) * static_cast<double>(rv[c]) + momentum * var * count / (count - 1.0));  // unbiased
        }
      }
      if (rm) {
        ++running_mean.impl()->storage->version;
        ++running_var.impl()->storage->version;
      }
    } else {
      const Tensor rm_dense = xg::detail::dense(running_mean);
      const T* rm = rm_dense.contiguous_data<T>();
      const Tensor rv_dense = xg::detail::dense(running_var);
      const T* rv = rv_dense.contiguous_data<T>();
      for (int64_t c = 0; c < l.channels; ++c) {
        mean[c] = rm[c];
        invstd[c] = static_cast<T>(1.0 / std::sqrt(static_cast<double>(rv[c]) + eps));
      }
    }
    std::vector<T> scale(static_cast<size_t>(l.channels)), offset(scale.size());
    for (int64_t c = 0; c < l.channels; ++c) {
      scale[c] = (w ? w[c] : T(1)) * invstd[c];
      offset[c] = (b ? b[c] : T(0)) - mean[c] * scale[c];
    }
    Array<T> y = detail::new_array<T>(shape);
    channel_affine(x, l, scale.data(), offset.data(), y.data());
    saved_mean = detail::make_tensor(std::move(mean_array));
    saved_invstd = detail::make_tensor(std::move(invstd_array));
    return detail::make_tensor(std::move(y));
  });

  if (should_record({&input, &weight, &bias})) {
    record("BatchNormBackward", {input, weight, bias}, out, {input, weight, saved_mean, saved_invstd},
           [training, eps](const BackwardContext& ctx, const Tensor& gy) -> TensorList {
             const Tensor& x = ctx.saved(0);
             const Tensor& w = ctx.saved(1);
             const Tensor& mean_c = ctx.saved(2);
             const Tensor& invstd_c = ctx.saved(3);
             if (training) {
               if (should_record({&gy, &x, &w})) return batch_norm_training_backward_ops(ctx, gy, x, w, eps);
               return batch_norm_training_backward_fused(ctx, gy, x, w, mean_c, invstd_c);
             }
             // Running statistics are constants: y = (x - mean) * invstd * w + b is affine in x.
             const int64_t ndim = x.dim();
             const std::vector<int64_t> dims = non_channel_dims(ndim);
             const Shape broadcast = channel_shape(x.size(1), ndim);
             Tensor invstd = reshape(invstd_c, broadcast);
             Tensor gx, gw, gb;
             if (ctx.needs_grad(0)) gx = mul(gy, w.defined() ? reshape(mul(w, invstd_c), broadcast) : invstd);
             if (ctx.needs_grad(1)) gw = sum(mul(gy, mul(sub(x, reshape(mean_c, broadcast)), invstd)), dims);
             if (ctx.needs_grad(2)) gb = sum(gy, dims);
             return {gx, gw, gb};
           });
  }
  autograd::check_forward_anomaly("batch_norm", out);
  return out;
}

Tensor layer_norm(const Tensor& input, const LayerNormFuncOptions& options) {
  XG_CHECK(input.defined(), "layer_norm: the input tensor is undefined");
  XG_CHECK(input.is_floating_point(), "layer_norm: expected a float32 or float64 input, got {}", input.dtype());
  check_eps("layer_norm", options.eps());
  const std::vector<int64_t>& normalized = options.normalized_shape();
  const Shape shape = input.shape();
  const size_t k = normalized.size();
  XG_CHECK(k >= 1, "layer_norm: normalized_shape must not be empty");
  const bool trailing_match = shape.size() >= k && std::equal(normalized.begin(), normalized.end(), shape.end() - static_cast<int64_t>(k));
  XG_CHECK(trailing_match, "layer_norm: expected input with trailing dimensions {} (normalized_shape), got shape {}", shape_string(normalized),
           shape_string(shape));
  for (const Tensor* t : {&options.weight(), &options.bias()})
    if (t->defined())
      XG_CHECK(t->shape() == Shape(normalized), "layer_norm: expected weight and bias of shape {} (normalized_shape), got {}",
               shape_string(normalized), shape_string(t->shape()));
  std::vector<int64_t> dims;
  for (size_t i = 0; i < k; ++i) dims.push_back(static_cast<int64_t>(shape.size() - k + i));
  Tensor centered = sub(input, mean(input, dims, true));
  Tensor variance = mean(mul(centered, centered), dims, true);  // biased, as PyTorch
  Tensor out = mul(centered, pow(add(variance, options.eps()), -0.5));
  if (options.weight().defined()) out = mul(out, options.weight());
  if (options.bias().defined()) out = add(out, options.bias());
  return out;
}

Tensor group_norm(const Tensor& input, const GroupNormFuncOptions& options) {
  XG_CHECK(input.defined(), "group_norm: the input tensor is undefined");
  XG_CHECK(input.is_floating_point(), "group_norm: expected a float32 or float64 input, got {}", input.dtype());
  check_eps("group_norm", options.eps());
  XG_CHECK(input.dim() >= 2, "group_norm: expected an input of at least 2 dimensions [N, C, *], got shape {}", shape_string(input.shape()));
  const Shape shape = input.shape();
  const int64_t channels = shape[1], groups = options.num_groups();
  XG_CHECK(groups > 0 && channels % groups == 0, "group_norm: expected the number of channels ({}) to be divisible by num_groups ({}), input shape {}",
           channels, groups, shape_string(shape));
  for (const Tensor* t : {&options.weight(), &options.bias()})
    if (t->defined())
      XG_CHECK(t->dim() == 1 && t->numel() == channels, "group_norm: expected weight and bias of shape [{}] (one per channel), got {}",
               channels, shape_string(t->shape()));
  // The group size spelled out: with a batch of 0, -1 could not be inferred from 0 elements.
  int64_t group_size = channels / groups;
  for (size_t d = 2; d < shape.size(); ++d) group_size *= shape[d];
  Tensor grouped = reshape(input, {shape[0], groups, group_size});
  Tensor centered = sub(grouped, mean(grouped, {2}, true));
  Tensor variance = mean(mul(centered, centered), {2}, true);
  Tensor out = reshape(mul(centered, pow(add(variance, options.eps()), -0.5)), shape);
  const Shape broadcast = channel_shape(channels, input.dim());
  if (options.weight().defined()) out = mul(out, reshape(options.weight(), broadcast));
  if (options.bias().defined()) out = add(out, reshape(options.bias(), broadcast));
  return out;
}

}  // namespace functional

// ---- BatchNorm modules --------------------------------------------------------------------------------
BatchNormImplBase::BatchNormImplBase(const BatchNormOptions& options_) : options(options_) {
  XG_CHECK(options.num_features() > 0, "BatchNorm: num_features must be positive, got {}", options.num_features());
  check_eps("BatchNorm", options.eps());
  if (options.momentum())
    XG_CHECK(*options.momentum() >= 0 && *options.momentum() <= 1, "BatchNorm: momentum must be in [0, 1] (or nullopt), got {}",
             *options.momentum());
  if (options.affine()) {
    weight = register_parameter("weight", empty({options.num_features()}));
    bias = register_parameter("bias", empty({options.num_features()}));
  }
  if (options.track_running_stats()) {
    running_mean = register_buffer("running_mean", empty({options.num_features()}));
    running_var = register_buffer("running_var", empty({options.num_features()}));
    num_batches_tracked = register_buffer("num_batches_tracked", zeros({}, kInt64));
  }
  reset_parameters();
}

void BatchNormImplBase::reset_running_stats() {
  if (!options.track_running_stats()) return;
  NoGradGuard no_grad;
  running_mean.zero_();
  running_var.fill_(1.0);
  num_batches_tracked.zero_();
}

void BatchNormImplBase::reset_parameters() {
  reset_running_stats();
  if (!options.affine()) return;
  NoGradGuard no_grad;
  weight.fill_(1.0);
  bias.zero_();
}

Tensor BatchNormImplBase::forward(const Tensor& input) {
  XG_CHECK(input.defined(), "{}: the input tensor is undefined", name());
  check_input_dim(input);
  XG_CHECK(input.size(1) == options.num_features(), "{}: expected input with {} channels (num_features) in dimension 1, got shape {}", name(),
           options.num_features(), shape_string(input.shape()));
  const Tensor& reference = weight.defined() ? weight : running_mean;
  if (reference.defined())
    XG_CHECK(input.dtype() == reference.dtype(), "{}: expected a {} input (the dtype of the layer's parameters), got {}", name(),
             reference.dtype(), input.dtype());
  double factor = 0.0;
  if (is_training() && options.track_running_stats()) {
    int64_t& batches = *num_batches_tracked.contiguous_data<int64_t>();
    ++batches;
    ++num_batches_tracked.impl()->storage->version;
    // momentum = nullopt: a cumulative moving average, each batch weighted 1 / (batches seen so far).
    factor = options.momentum() ? *options.momentum() : 1.0 / static_cast<double>(batches);
  }
  const bool use_batch_stats = is_training() || !options.track_running_stats();
  return functional::batch_norm(input, running_mean, running_var,
                                functional::BatchNormFuncOptions()
                                    .weight(weight)
                                    .bias(bias)
                                    .training(use_batch_stats)
                                    .momentum(factor)
                                    .eps(options.eps()));
}

std::string BatchNormImplBase::extra_repr() const {
  return fmt::format("{}, eps={}, momentum={}, affine={}, track_running_stats={}", options.num_features(), options.eps(),
                     options.momentum() ? fmt::format("{}", *options.momentum()) : std::string("None"), options.affine(),
                     options.track_running_stats());
}

void BatchNorm1dImpl::check_input_dim(const Tensor& input) const {
  XG_CHECK(input.dim() == 2 || input.dim() == 3, "BatchNorm1d: expected 2D or 3D input ([N, C] or [N, C, L]), got shape {}",
           shape_string(input.shape()));
}

void BatchNorm2dImpl::check_input_dim(const Tensor& input) const {
  XG_CHECK(input.dim() == 4, "BatchNorm2d: expected 4D input ([N, C, H, W]), got shape {}", shape_string(input.shape()));
}

// ---- LayerNorm ----------------------------------------------------------------------------------------
LayerNormImpl::LayerNormImpl(const LayerNormOptions& options_) : options(options_) {
  XG_CHECK(!options.normalized_shape().empty(), "LayerNorm: normalized_shape must not be empty");
  for (int64_t s : options.normalized_shape())
    XG_CHECK(s > 0, "LayerNorm: normalized_shape must hold positive sizes, got {}", shape_string(options.normalized_shape()));
  check_eps("LayerNorm", options.eps());
  if (options.elementwise_affine()) {
    weight = register_parameter("weight", xg::empty(options.normalized_shape()));
    bias = register_parameter("bias", xg::empty(options.normalized_shape()));
  }
  reset_parameters();
}

void LayerNormImpl::reset_parameters() {
  if (!options.elementwise_affine()) return;
  NoGradGuard no_grad;
  weight.fill_(1.0);
  bias.zero_();
}

Tensor LayerNormImpl::forward(const Tensor& input) {
  XG_CHECK(input.defined(), "LayerNorm: the input tensor is undefined");
  const Shape& normalized = options.normalized_shape();
  const Shape shape = input.shape();
  const bool trailing_match =
      shape.size() >= normalized.size() && std::equal(normalized.begin(), normalized.end(), shape.end() - static_cast<int64_t>(normalized.size()));
  XG_CHECK(trailing_match, "LayerNorm: expected input with trailing dimensions {} (normalized_shape), got shape {}", shape_string(normalized),
           shape_string(shape));
  return functional::layer_norm(input, functional::LayerNormFuncOptions(normalized).weight(weight).bias(bias).eps(options.eps()));
}

std::string LayerNormImpl::extra_repr() const {
  return fmt::format("{}, eps={}, elementwise_affine={}", shape_string(options.normalized_shape()), options.eps(), options.elementwise_affine());
}

// ---- GroupNorm ----------------------------------------------------------------------------------------
GroupNormImpl::GroupNormImpl(const GroupNormOptions& options_) : options(options_) {
  XG_CHECK(options.num_groups() > 0 && options.num_channels() > 0, "GroupNorm: num_groups and num_channels must be positive, got {} and {}",
           options.num_groups(), options.num_channels());
  XG_CHECK(options.num_channels() % options.num_groups() == 0, "GroupNorm: num_channels ({}) must be divisible by num_groups ({})",
           options.num_channels(), options.num_groups());
  check_eps("GroupNorm", options.eps());
  if (options.affine()) {
    weight = register_parameter("weight", empty({options.num_channels()}));
    bias = register_parameter("bias", empty({options.num_channels()}));
  }
  reset_parameters();
}

void GroupNormImpl::reset_parameters() {
  if (!options.affine()) return;
  NoGradGuard no_grad;
  weight.fill_(1.0);
  bias.zero_();
}

Tensor GroupNormImpl::forward(const Tensor& input) {
  XG_CHECK(input.defined(), "GroupNorm: the input tensor is undefined");
  XG_CHECK(input.dim() >= 2 && input.size(1) == options.num_channels(),
           "GroupNorm: expected input [N, C, *] with C = {} (num_channels), got shape {}", options.num_channels(), shape_string(input.shape()));
  return functional::group_norm(input,
                                functional::GroupNormFuncOptions(options.num_groups()).weight(weight).bias(bias).eps(options.eps()));
}

std::string GroupNormImpl::extra_repr() const {
  return fmt::format("{}, {}, eps={}, affine={}", options.num_groups(), options.num_channels(), options.eps(), options.affine());
}

}  // namespace xg::nn
