// Losses. Cross-entropy with class indices is one fused primitive (log_softmax + nll in one pass,
// exact and stable); binary_cross_entropy and binary_cross_entropy_with_logits are elementwise
// primitives (PyTorch's clamped and log-sum-exp forms); the rest are composites of xgrad ops. Every
// backward is written with xgrad ops (or, for cross-entropy, has an op-based twin used when the
// backward is recorded), so second derivatives work.
#include "xgrad/nn/loss.hpp"

#include <cmath>
#include <limits>

#include "xgrad/autograd/kernels.hpp"

namespace xg::nn {

using autograd::BackwardContext;
using autograd::record;
using autograd::should_record;

namespace {

enum class Reduction { None, Mean, Sum, BatchMean };

Reduction parse_reduction(const char* op, const std::string& reduction, bool allow_batchmean = false) {
  if (reduction == "none") return Reduction::None;
  if (reduction == "mean") return Reduction::Mean;
  if (reduction == "sum") return Reduction::Sum;
  if (allow_batchmean && reduction == "batchmean") return Reduction::BatchMean;
  XG_ERROR("{}: reduction must be {}, got \"{}\"", op, allow_batchmean ? "\"none\", \"batchmean\", \"mean\" or \"sum\"" : "\"none\", \"mean\" or \"sum\"",
           reduction);
}

/// PyTorch's "mean" of a loss over nothing (an empty batch, every target ignored): NaN (0/0), with a
/// zero gradient rather than NaN (inf * 0), and a graph, so backward still runs.
Tensor undefined_mean(const Tensor& total) { return add(mul(total, 0.0), std::numeric_limits<double>::quiet_NaN()); }

Tensor reduce(const Tensor& loss, Reduction reduction) {
  switch (reduction) {
    case Reduction::None: return loss;
    case Reduction::Sum: return sum(loss);
    case Reduction::Mean: return loss.numel() == 0 ? undefined_mean(sum(loss)) : mean(loss);
    case Reduction::BatchMean:
      if (loss.dim() == 0) return loss;
      // A batch of 0: sum / 0 = NaN in PyTorch (dividing by max(N, 1) gave 0).
      return loss.size(0) == 0 ? undefined_mean(sum(loss)) : div(sum(loss), static_cast<double>(loss.size(0)));
  }
  return loss;
}

void check_floating(const char* op, const char* what, const Tensor& t) {
  XG_CHECK(t.defined(), "{}: the {} tensor is undefined", op, what);
  XG_CHECK(t.is_floating_point(), "{}: expected a float32 or float64 {}, got {}", op, what, t.dtype());
}

/// Input and target: both floating, same dtype and the same shape.
void check_pair(const char* op, const Tensor& input, const Tensor& target) {
  check_floating(op, "input", input);
  check_floating(op, "target", target);
  XG_CHECK(input.dtype() == target.dtype(), "{}: expected input and target of the same dtype, got {} and {}", op, input.dtype(),
           target.dtype());
  XG_CHECK(input.shape() == target.shape(),
           "{}: expected input and target of the same shape, got {} and {} (xgrad does not broadcast a loss's target; reshape it)", op,
           shape_string(input.shape()), shape_string(target.shape()));
}

/// An optional weight broadcast to `shape` (undefined stays undefined), checked and detached: loss
/// weights are constants, as in PyTorch.
Tensor expanded_weight(const char* op, const char* what, const Tensor& weight, const Tensor& input) {
  if (!weight.defined()) return {};
  XG_CHECK(weight.dtype() == input.dtype(), "{}: expected {} of dtype {} (the input's), got {}", op, what, input.dtype(), weight.dtype());
  const Shape shape = input.shape();
  XG_CHECK(detail::broadcast_shapes(op, weight.shape(), shape) == shape, "{}: {} of shape {} does not broadcast to the input's shape {}", op,
           what, shape_string(weight.shape()), shape_string(shape));
  NoGradGuard no_grad;
  return weight.shape() == shape ? weight.detach() : expand(weight.detach(), shape);
}

// ---- class-index targets (cross_entropy, nll_loss) ----------------------------------------------------
/// The input seen as [outer, classes, inner]; an unbatched [C] input is [1, C, 1].
struct ClassLayout {
  int64_t outer = 1, classes = 1, inner = 1;
};

struct ClassTargets {
  ClassLayout layout;
  std::vector<int64_t> safe_target;  ///< the target, or 0 where ignored (a valid index to gather)
  std::vector<uint8_t> ignored;      ///< 1 where target == ignore_index
  std::vector<double> weight_at;     ///< w[target] (1 without weights); 0 where ignored
  std::vector<double> class_weight;  ///< w[c] (all 1 without weights)
  double total_weight = 0;           ///< sum of weight_at: the "mean" denominator
};

ClassTargets read_class_targets(const char* op, const Tensor& input, const Tensor& target, const Tensor& weight, int64_t ignore_index) {
  const Shape shape = input.shape();
  XG_CHECK(input.dim() >= 1, "{}: expected an input of shape [N, C], [N, C, d1, ...] or [C], got a 0-D tensor", op);
  XG_CHECK(target.defined(), "{}: the target tensor is undefined", op);
  XG_CHECK(target.dtype() == kInt64, "{}: expected int64 class indices as the target, got {} (shape {})", op, target.dtype(),
           shape_string(target.shape()));
  ClassTargets info;
  ClassLayout& l = info.layout;
  Shape expected_target;
  if (input.dim() == 1) {
    l.classes = shape[0];
  } else {
    l.outer = shape[0];
    l.classes = shape[1];
    for (size_t d = 2; d < shape.size(); ++d) l.inner *= shape[d];
    expected_target.push_back(shape[0]);
    expected_target.insert(expected_target.end(), shape.begin() + 2, shape.end());
  }
  XG_CHECK(target.shape() == expected_target,
           "{}: expected target of shape {} (class indices) for input of shape {}, got target of shape {}", op, shape_string(expected_target),
           shape_string(shape), shape_string(target.shape()));
  info.class_weight.assign(static_cast<size_t>(l.classes), 1.0);
  if (weight.defined()) {
    XG_CHECK(weight.dim() == 1 && weight.numel() == l.classes, "{}: expected a weight of shape [{}] (one per class), got {}", op, l.classes,
             shape_string(weight.shape()));
    XG_CHECK(weight.dtype() == input.dtype(), "{}: expected a weight of dtype {} (the input's), got {}", op, input.dtype(), weight.dtype());
    detail::dispatch_floating(op, weight, [&](auto tag) {
      using T = decltype(tag);
      const Tensor w_dense = xg::detail::dense(weight);
      const T* w = w_dense.contiguous_data<T>();
      for (int64_t c = 0; c < l.classes; ++c) info.class_weight[c] = static_cast<double>(w[c]);
      return 0;
    });
  }
  const int64_t count = l.outer * l.inner;
  const Tensor t_dense = xg::detail::dense(target);
  const int64_t* t = t_dense.contiguous_data<int64_t>();
  info.safe_target.assign(static_cast<size_t>(count), 0);
  info.ignored.assign(static_cast<size_t>(count), 0);
  info.weight_at.assign(static_cast<size_t>(count), 0.0);
  for (int64_t p = 0; p < count; ++p) {
    if (t[p] == ignore_index) {
      info.ignored[p] = 1;
      continue;
    }
    XG_CHECK(t[p] >= 0 && t[p] < l.classes, "{}: target {} is out of bounds for {} classes (input shape {}; valid targets are 0..{})", op,
             t[p], l.classes, shape_string(shape), l.classes - 1);
    info.safe_target[p] = t[p];
    info.weight_at[p] = info.class_weight[t[p]];
    info.total_weight += info.weight_at[p];
  }
  return info;
}

/// Class-index cross-entropy as one primitive. Per position (PyTorch's formula, incl. label smoothing eps):
///   loss = (1 - eps) w_t (lse - x_t) + eps / C * sum_c w_c (lse - x_c),   lse = log sum_c exp(x_c),
/// 0 at ignored positions; "mean" divides the sum by sum of w_t over non-ignored positions.
Tensor cross_entropy_class_indices(const Tensor& input, const Tensor& target, const CrossEntropyLossOptions& options, Reduction reduction) {
  const char* op = "cross_entropy";
  auto info = std::make_shared<const ClassTargets>(read_class_targets(op, input, target, options.weight(), options.ignore_index()));
  const ClassLayout l = info->layout;
  const double smoothing = options.label_smoothing();
  const double smoothing_per_class = smoothing / static_cast<double>(l.classes);
  double class_weight_total = 0;
  for (double w : info->class_weight) class_weight_total += w;
  const int64_t count = l.outer * l.inner;

  // Per position the row maximum m and log sum_c exp(x_c - m), kept apart and in double: x_c - m is
  // exact near the maximum, whereas lse = m + log(sum) rounds at the logits' magnitude (1e-3 at 1e4 in
  // float32), an error that log-probabilities and probabilities of order 1 would inherit.
  Tensor shift_and_log_sum;
  Tensor out = detail::dispatch_floating(op, input, [&](auto tag) {
    using T = decltype(tag);
    const Tensor x_dense = xg::detail::dense(input);
    const T* x = x_dense.contiguous_data<T>();
    Array<double> shift_array = detail::new_array<double>({count, 2});
    Array<T> loss_array = detail::new_array<T>(reduction == Reduction::None ? target.shape() : Shape{});
    double total = 0;
    for (int64_t o = 0; o < l.outer; ++o)
      for (int64_t i = 0; i < l.inner; ++i) {
        const int64_t p = o * l.inner + i;
        const T* row = x + o * l.classes * l.inner + i;  // class c at row[c * inner]
        double loss = 0, m = 0, log_sum = 0;
        if (!info->ignored[p]) {
          m = -std::numeric_limits<double>::infinity();
          for (int64_t c = 0; c < l.classes; ++c) m = std::max(m, static_cast<double>(row[c * l.inner]));
          if (std::isinf(m)) m = 0;  // all -inf (or some +inf): let the arithmetic give inf/nan honestly
          double s = 0;
          for (int64_t c = 0; c < l.classes; ++c) s += std::exp(static_cast<double>(row[c * l.inner]) - m);
          log_sum = std::log(s);
          // -log_softmax(x)_c = (m - x_c) + log_sum
          loss = (1.0 - smoothing) * info->weight_at[p] * ((m - static_cast<double>(row[info->safe_target[p] * l.inner])) + log_sum);
          if (smoothing > 0) {
            double smooth = 0;
            for (int64_t c = 0; c < l.classes; ++c)
              smooth += info->class_weight[c] * ((m - static_cast<double>(row[c * l.inner])) + log_sum);
            loss += smoothing_per_class * smooth;
          }
        }
        shift_array.data()[2 * p] = m;
        shift_array.data()[2 * p + 1] = log_sum;
        if (reduction == Reduction::None) loss_array.data()[p] = static_cast<T>(loss);
        total += loss;
      }
    if (reduction == Reduction::Sum) loss_array.data()[0] = static_cast<T>(total);
    if (reduction == Reduction::Mean) loss_array.data()[0] = static_cast<T>(total / info->total_weight);  // 0/0 = nan, as PyTorch
    shift_and_log_sum = detail::make_tensor(std::move(shift_array));
    return detail::make_tensor(std::move(loss_array));
  });

  if (should_record({&input})) {
    const Shape input_shape = input.shape();
    record("CrossEntropyBackward", {input}, out, {input, shift_and_log_sum},
           [info, smoothing, smoothing_per_class, class_weight_total, reduction, input_shape](const BackwardContext& ctx, const Tensor& gy) {
             const ClassLayout l = info->layout;
             const int64_t count = l.outer * l.inner;
             const double scale = reduction == Reduction::Mean ? 1.0 / info->total_weight : 1.0;
             const Tensor& x = ctx.saved(0);
             // d loss / d x_c = (1 - eps) w_t (p_c - [c == t]) + eps / C (p_c W - w_c), W = sum_c w_c,
             // i.e. g * (p_c * a + b_c) with a = (1 - eps) w_t + eps W / C, b_c = -eps w_c / C - (1 - eps) w_t [c == t].
             if (should_record({&gy, &x})) {
               // Recorded backward (create_graph): the same formula with xgrad ops, softmax differentiable.
               std::vector<double> a(static_cast<size_t>(count), 0.0), b(static_cast<size_t>(count * l.classes), 0.0);
               for (int64_t o = 0; o < l.outer; ++o)
                 for (int64_t i = 0; i < l.inner; ++i) {
                   const int64_t p = o * l.inner + i;
                   if (info->ignored[p]) continue;
                   a[p] = (1.0 - smoothing) * info->weight_at[p] + smoothing_per_class * class_weight_total;
                   for (int64_t c = 0; c < l.classes; ++c) b[(o * l.classes + c) * l.inner + i] = -smoothing_per_class * info->class_weight[c];
                   b[(o * l.classes + info->safe_target[p]) * l.inner + i] -= (1.0 - smoothing) * info->weight_at[p];
                 }
               Tensor probabilities = softmax(reshape(x, {l.outer, l.classes, l.inner}), 1);
               Tensor coefficient_a = tensor(a, {l.outer, 1, l.inner}, x.dtype());
               Tensor coefficient_b = tensor(b, {l.outer, l.classes, l.inner}, x.dtype());
               Tensor g = reduction == Reduction::None ? reshape(gy, {l.outer, 1, l.inner}) : reshape(mul(gy, scale), {1, 1, 1});
               return TensorList{reshape(mul(g, add(mul(probabilities, coefficient_a), coefficient_b)), input_shape)};
             }
             const Tensor& saved_shift = ctx.saved(1);
             return TensorList{detail::dispatch_floating("cross_entropy", x, [&](auto tag) {
               using T = decltype(tag);
               const Tensor px_dense = xg::detail::dense(x);
               const T* px = px_dense.contiguous_data<T>();
               const Tensor shift_dense = xg::detail::dense(saved_shift);
               const double* shift = shift_dense.contiguous_data<double>();  // [m, log_sum] per position
               const Tensor pg_dense = xg::detail::dense(gy);
               const T* pg = pg_dense.contiguous_data<T>();
               Array<T> grad = detail::new_array<T>(input_shape);
               T* out = grad.data();
               for (int64_t o = 0; o < l.outer; ++o)
                 for (int64_t i = 0; i < l.inner; ++i) {
                   const int64_t p = o * l.inner + i;
                   const int64_t base = o * l.classes * l.inner + i;
                   if (info->ignored[p]) {
                     for (int64_t c = 0; c < l.classes; ++c) out[base + c * l.inner] = T(0);
                     continue;
                   }
                   const double g = static_cast<double>(reduction == Reduction::None ? pg[p] : pg[0]) * scale;
                   const double nll_weight = (1.0 - smoothing) * info->weight_at[p];
                   const double a = nll_weight + smoothing_per_class * class_weight_total;
                   const double m = shift[2 * p], log_sum = shift[2 * p + 1];
                   for (int64_t c = 0; c < l.classes; ++c) {
                     const double probability = std::exp((static_cast<double>(px[base + c * l.inner]) - m) - log_sum);
                     double v = probability * a - smoothing_per_class * info->class_weight[c];
                     if (c == info->safe_target[p]) v -= nll_weight;
                     out[base + c * l.inner] = static_cast<T>(g * v);
                   }
                 }
               return detail::make_tensor(std::move(grad));
             })};
           });
  }
  autograd::check_forward_anomaly(op, out);
  return out;
}

/// Probability targets (same shape as the input): -sum_c w_c t'_c log_softmax(x)_c with
/// t' = (1 - eps) t + eps / C; "mean" divides by the number of positions (N * d1 * ...), as PyTorch.
Tensor cross_entropy_probabilities(const Tensor& input, const Tensor& target, const CrossEntropyLossOptions& options, Reduction reduction) {
  const char* op = "cross_entropy";
  check_pair(op, input, target);
  XG_CHECK(input.dim() >= 1, "{}: expected an input of shape [N, C], [N, C, d1, ...] or [C], got a 0-D tensor", op);
  const int64_t class_dim = input.dim() == 1 ? 0 : 1;
  const int64_t classes = input.size(class_dim);
  Tensor smoothed = target;
  if (options.label_smoothing() > 0)
    smoothed = add(mul(target, 1.0 - options.label_smoothing()), options.label_smoothing() / static_cast<double>(classes));
  Tensor weighted = mul(log_softmax(input, class_dim), smoothed);
  if (options.weight().defined()) {
    const Tensor& w = options.weight();
    XG_CHECK(w.dim() == 1 && w.numel() == classes, "{}: expected a weight of shape [{}] (one per class), got {}", op, classes,
             shape_string(w.shape()));
    XG_CHECK(w.dtype() == input.dtype(), "{}: expected a weight of dtype {} (the input's), got {}", op, input.dtype(), w.dtype());
    Shape broadcast(static_cast<size_t>(input.dim()), 1);
    broadcast[class_dim] = classes;
    weighted = mul(weighted, reshape(w.detach(), broadcast));
  }
  Tensor per_position = neg(sum(weighted, {class_dim}));
  return reduce(per_position, reduction);  // "mean" of an empty batch is NaN, as PyTorch's
}

}  // namespace

namespace functional {

Tensor mse_loss(const Tensor& input, const Tensor& target, const MSELossFuncOptions& options) {
  // Checked once under anomaly mode, as mse_loss (not as the sub or mul inside it).
  return autograd::anomaly_checked_as("mse_loss", [&]() -> Tensor {
    const Reduction reduction = parse_reduction("mse_loss", options.reduction());
    check_pair("mse_loss", input, target);
    Tensor difference = sub(input, target);
    return reduce(mul(difference, difference), reduction);
  });
}

Tensor l1_loss(const Tensor& input, const Tensor& target, const L1LossFuncOptions& options) {
  // Checked once under anomaly mode, as l1_loss (not as the sub or mul inside it).
  return autograd::anomaly_checked_as("l1_loss", [&]() -> Tensor {
    const Reduction reduction = parse_reduction("l1_loss", options.reduction());
    check_pair("l1_loss", input, target);
    return reduce(abs(sub(input, target)), reduction);
  });
}

Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, const SmoothL1LossFuncOptions& options) {
  // Checked once under anomaly mode, as smooth_l1_loss (not as the sub or mul inside it).
  return autograd::anomaly_checked_as("smooth_l1_loss", [&]() -> Tensor {
    const Reduction reduction = parse_reduction("smooth_l1_loss", options.reduction());
    check_pair("smooth_l1_loss", input, target);
    const double beta = options.beta();
    XG_CHECK(beta >= 0, "smooth_l1_loss: beta must be non-negative, got {}", beta);
    Tensor difference = sub(input, target);
    Tensor magnitude = abs(difference);
    if (beta == 0) return reduce(magnitude, reduction);  // PyTorch: beta = 0 is exactly L1
    Tensor quadratic = mul(mul(difference, difference), 0.5 / beta);
    return reduce(where(lt(magnitude, beta), quadratic, sub(magnitude, 0.5 * beta)), reduction);
  });
}

Tensor huber_loss(const Tensor& input, const Tensor& target, const HuberLossFuncOptions& options) {
  // Checked once under anomaly mode, as huber_loss (not as the sub or mul inside it).
  return autograd::anomaly_checked_as("huber_loss", [&]() -> Tensor {
    const Reduction reduction = parse_reduction("huber_loss", options.reduction());
    check_pair("huber_loss", input, target);
    const double delta = options.delta();
    XG_CHECK(delta > 0, "huber_loss: delta must be positive, got {}", delta);
    Tensor difference = sub(input, target);
    Tensor magnitude = abs(difference);
    Tensor quadratic = mul(mul(difference, difference), 0.5);
    return reduce(where(lt(magnitude, delta), quadratic, mul(sub(magnitude, 0.5 * delta), delta)), reduction);
  });
}

Tensor cross_entropy(const Tensor& input, const Tensor& target, const CrossEntropyFuncOptions& options) {
  const Reduction reduction = parse_reduction("cross_entropy", options.reduction());
  check_floating("cross_entropy", "input", input);
  XG_CHECK(target.defined(), "cross_entropy: the target tensor is undefined");
  XG_CHECK(options.label_smoothing() >= 0 && options.label_smoothing() <= 1, "cross_entropy: label_smoothing must be in [0, 1], got {}",
           options.label_smoothing());
  if (target.dtype() == kInt64) return cross_entropy_class_indices(input, target, options, reduction);
  XG_CHECK(target.shape() == input.shape(),
           "cross_entropy: expected int64 class indices, or class probabilities of the input's shape {}, got a {} target of shape {}",
           shape_string(input.shape()), target.dtype(), shape_string(target.shape()));
  return cross_entropy_probabilities(input, target, options, reduction);
}

Tensor nll_loss(const Tensor& input, const Tensor& target, const NLLLossFuncOptions& options) {
  // Checked once under anomaly mode, as nll_loss (not as the sub or mul inside it).
  return autograd::anomaly_checked_as("nll_loss", [&]() -> Tensor {
    const char* op = "nll_loss";
    const Reduction reduction = parse_reduction(op, options.reduction());
    check_floating(op, "input", input);
    const ClassTargets info = read_class_targets(op, input, target, options.weight(), options.ignore_index());
    const ClassLayout l = info.layout;
    // loss_p = -w_t * input[p, t]: gather the target's log-probability (index 0 stands in at ignored
    // positions, whose weight is 0).
    Tensor index = tensor(std::vector<double>(info.safe_target.begin(), info.safe_target.end()), {l.outer, 1, l.inner}, kInt64);
    Tensor picked = gather(reshape(input, {l.outer, l.classes, l.inner}), 1, index);
    Tensor weights = tensor(info.weight_at, {l.outer, 1, l.inner}, input.dtype());
    Tensor losses = neg(mul(picked, weights));
    switch (reduction) {
      case Reduction::None: return reshape(losses, target.shape());
      case Reduction::Sum: return sum(losses);
      default:
        // Every target ignored (or weighted 0): PyTorch 1.13 returns NaN (0/0) with gradient 0.
        return info.total_weight == 0 ? undefined_mean(sum(losses)) : div(sum(losses), info.total_weight);
    }
  });
}

Tensor binary_cross_entropy(const Tensor& input, const Tensor& target, const BinaryCrossEntropyFuncOptions& options) {
  const char* op = "binary_cross_entropy";
  const Reduction reduction = parse_reduction(op, options.reduction());
  check_pair(op, input, target);
  Tensor weight = expanded_weight(op, "weight", options.weight(), input);
  Tensor losses = detail::dispatch_floating(op, input, [&](auto tag) {
    using T = decltype(tag);
    const Tensor x_dense = xg::detail::dense(input);
    const T* x = x_dense.contiguous_data<T>();
    const Tensor t_dense = xg::detail::dense(target);
    const T* t = t_dense.contiguous_data<T>();
    const Tensor w_dense = weight.defined() ? xg::detail::dense(weight) : Tensor();
    const T* w = w_dense.defined() ? w_dense.contiguous_data<T>() : nullptr;
    const int64_t n = input.numel();
    Array<T> out = detail::new_array<T>(input.shape());
    for (int64_t i = 0; i < n; ++i) {
      XG_CHECK(x[i] >= T(0) && x[i] <= T(1), "{}: all elements of input should be between 0 and 1 (probabilities; use "
               "binary_cross_entropy_with_logits for logits), got {} at flat index {}", op, x[i], i);
      // PyTorch clamps each log at -100 so that x = 0 or 1 gives a finite loss.
      const T log_x = std::max(std::log(x[i]), T(-100)), log_1mx = std::max(std::log1p(-x[i]), T(-100));
      out.data()[i] = -(w ? w[i] : T(1)) * (t[i] * log_x + (T(1) - t[i]) * log_1mx);
    }
    return detail::make_tensor(std::move(out));
  });
  if (should_record({&input, &target})) {
    record("BinaryCrossEntropyBackward", {input, target}, losses, {input, target, weight}, [](const BackwardContext& ctx, const Tensor& gy) {
      const Tensor& x = ctx.saved(0);
      const Tensor& t = ctx.saved(1);
      const Tensor& w = ctx.saved(2);
      Tensor g = w.defined() ? mul(gy, w) : gy;
      Tensor gx, gt;
      // d/dx = w (x - t) / (x (1 - x)), the denominator clamped at 1e-12 as PyTorch does.
      if (ctx.needs_grad(0)) gx = div(mul(g, sub(x, t)), clamp(mul(x, rsub(x, 1.0)), 1e-12));
      // d/dt = w (log(1 - x) - log x), with the forward's clamped logs.
      if (ctx.needs_grad(1)) gt = mul(g, sub(clamp(log(rsub(x, 1.0)), -100.0), clamp(log(x), -100.0)));
      return TensorList{gx, gt};
    });
  }
  return reduce(losses, reduction);
}

Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target, const BinaryCrossEntropyWithLogitsFuncOptions& options) {
  const char* op = "binary_cross_entropy_with_logits";
  const Reduction reduction = parse_reduction(op, options.reduction());
  check_pair(op, input, target);
  Tensor weight = expanded_weight(op, "weight", options.weight(), input);
  Tensor pos_weight = expanded_weight(op, "pos_weight", options.pos_weight(), input);
  Tensor losses = detail::dispatch_floating(op, input, [&](auto tag) {
    using T = decltype(tag);
    const Tensor x_dense = xg::detail::dense(input);
    const T* x = x_dense.contiguous_data<T>();
    const Tensor t_dense = xg::detail::dense(target);
    const T* t = t_dense.contiguous_data<T>();
    const Tensor w_dense = weight.defined() ? xg::detail::dense(weight) : Tensor();
    const T* w = w_dense.defined() ? w_dense.contiguous_data<T>() : nullptr;
    const Tensor pw_dense = pos_weight.defined() ? xg::detail::dense(pos_weight) : Tensor();
    const T* pw = pw_dense.defined() ? pw_dense.contiguous_data<T>() : nullptr;
    const int64_t n = input.numel();
    Array<T> out = detail::new_array<T>(input.shape());
    for (int64_t i = 0; i < n; ++i) {
      // softplus(-x) = log(1 + exp(-x)) = log1p(exp(-|x|)) + max(-x, 0): never overflows, exact for large |x|.
      const T softplus_neg = std::log1p(std::exp(-std::abs(x[i]))) + std::max(-x[i], T(0));
      const T log_weight = pw ? T(1) + (pw[i] - T(1)) * t[i] : T(1);
      out.data()[i] = (w ? w[i] : T(1)) * ((T(1) - t[i]) * x[i] + log_weight * softplus_neg);
    }
    return detail::make_tensor(std::move(out));
  });
  if (should_record({&input, &target})) {
    record("BinaryCrossEntropyWithLogitsBackward", {input, target}, losses, {input, target, weight, pos_weight},
           [](const BackwardContext& ctx, const Tensor& gy) {
             const Tensor& x = ctx.saved(0);
             const Tensor& t = ctx.saved(1);
             const Tensor& w = ctx.saved(2);
             const Tensor& pw = ctx.saved(3);
             Tensor g = w.defined() ? mul(gy, w) : gy;
             Tensor gx, gt;
             if (pw.defined()) {
               // loss = (1 - t) x + lw softplus(-x), lw = 1 + (pw - 1) t.
               if (ctx.needs_grad(0)) {
                 Tensor log_weight = add(mul(sub(pw, 1.0), t), 1.0);
                 gx = mul(g, sub(rsub(t, 1.0), mul(log_weight, sigmoid(neg(x)))));
               }
               if (ctx.needs_grad(1)) gt = mul(g, sub(mul(sub(pw, 1.0), softplus(neg(x))), x));
             } else {
               if (ctx.needs_grad(0)) gx = mul(g, sub(sigmoid(x), t));
               if (ctx.needs_grad(1)) gt = mul(g, neg(x));
             }
             return TensorList{gx, gt};
           });
  }
  autograd::check_forward_anomaly(op, losses);
  return reduce(losses, reduction);
}

Tensor kl_div(const Tensor& input, const Tensor& target, const KLDivFuncOptions& options) {
  // Checked once under anomaly mode, as kl_div (not as the sub or mul inside it).
  return autograd::anomaly_checked_as("kl_div", [&]() -> Tensor {
    const Reduction reduction = parse_reduction("kl_div", options.reduction(), /*allow_batchmean=*/true);
    check_pair("kl_div", input, target);
    Tensor pointwise;
    if (options.log_target()) {
      pointwise = mul(exp(target), sub(target, input));
    } else {
      // xlogy(t, t) - t * input, with 0 log 0 = 0 (a safe log keeps the unused branch's gradient finite).
      Tensor positive = gt(target, 0.0);
      Tensor safe_target = where(positive, target, ones({}, target.dtype()));
      pointwise = sub(mul(target, log(safe_target)), mul(target, input));
    }
    return reduce(pointwise, reduction);
  });
}

}  // namespace functional

// ---- modules -------------------------------------------------------------------------------------------
MSELossImpl::MSELossImpl(const MSELossOptions& options_) : options(options_) { parse_reduction("MSELoss", options.reduction()); }
Tensor MSELossImpl::forward(const Tensor& input, const Tensor& target) { return functional::mse_loss(input, target, options); }
std::string MSELossImpl::extra_repr() const { return fmt::format("reduction={}", options.reduction()); }

L1LossImpl::L1LossImpl(const L1LossOptions& options_) : options(options_) { parse_reduction("L1Loss", options.reduction()); }
Tensor L1LossImpl::forward(const Tensor& input, const Tensor& target) { return functional::l1_loss(input, target, options); }
std::string L1LossImpl::extra_repr() const { return fmt::format("reduction={}", options.reduction()); }

SmoothL1LossImpl::SmoothL1LossImpl(const SmoothL1LossOptions& options_) : options(options_) {
  parse_reduction("SmoothL1Loss", options.reduction());
  XG_CHECK(options.beta() >= 0, "SmoothL1Loss: beta must be non-negative, got {}", options.beta());
}
Tensor SmoothL1LossImpl::forward(const Tensor& input, const Tensor& target) { return functional::smooth_l1_loss(input, target, options); }
std::string SmoothL1LossImpl::extra_repr() const { return fmt::format("reduction={}, beta={}", options.reduction(), options.beta()); }

HuberLossImpl::HuberLossImpl(const HuberLossOptions& options_) : options(options_) {
  parse_reduction("HuberLoss", options.reduction());
  XG_CHECK(options.delta() > 0, "HuberLoss: delta must be positive, got {}", options.delta());
}
Tensor HuberLossImpl::forward(const Tensor& input, const Tensor& target) { return functional::huber_loss(input, target, options); }
std::string HuberLossImpl::extra_repr() const { return fmt::format("reduction={}, delta={}", options.reduction(), options.delta()); }

CrossEntropyLossImpl::CrossEntropyLossImpl(const CrossEntropyLossOptions& options_) : options(options_) {
  parse_reduction("CrossEntropyLoss", options.reduction());
  XG_CHECK(options.label_smoothing() >= 0 && options.label_smoothing() <= 1, "CrossEntropyLoss: label_smoothing must be in [0, 1], got {}",
           options.label_smoothing());
  if (options.weight().defined()) weight = register_buffer("weight", options.weight());
}
Tensor CrossEntropyLossImpl::forward(const Tensor& input, const Tensor& target) {
  return functional::cross_entropy(input, target, CrossEntropyLossOptions(options).weight(weight));
}
std::string CrossEntropyLossImpl::extra_repr() const {
  return fmt::format("ignore_index={}, reduction={}, label_smoothing={}", options.ignore_index(), options.reduction(), options.label_smoothing());
}

NLLLossImpl::NLLLossImpl(const NLLLossOptions& options_) : options(options_) {
  parse_reduction("NLLLoss", options.reduction());
  if (options.weight().defined()) weight = register_buffer("weight", options.weight());
}
Tensor NLLLossImpl::forward(const Tensor& input, const Tensor& target) {
  return functional::nll_loss(input, target, NLLLossOptions(options).weight(weight));
}
std::string NLLLossImpl::extra_repr() const { return fmt::format("ignore_index={}, reduction={}", options.ignore_index(), options.reduction()); }

BCELossImpl::BCELossImpl(const BCELossOptions& options_) : options(options_) {
  parse_reduction("BCELoss", options.reduction());
  if (options.weight().defined()) weight = register_buffer("weight", options.weight());
}
Tensor BCELossImpl::forward(const Tensor& input, const Tensor& target) {
  return functional::binary_cross_entropy(input, target, BCELossOptions(options).weight(weight));
}
std::string BCELossImpl::extra_repr() const { return fmt::format("reduction={}", options.reduction()); }

BCEWithLogitsLossImpl::BCEWithLogitsLossImpl(const BCEWithLogitsLossOptions& options_) : options(options_) {
  parse_reduction("BCEWithLogitsLoss", options.reduction());
  if (options.weight().defined()) weight = register_buffer("weight", options.weight());
  if (options.pos_weight().defined()) pos_weight = register_buffer("pos_weight", options.pos_weight());
}
Tensor BCEWithLogitsLossImpl::forward(const Tensor& input, const Tensor& target) {
  return functional::binary_cross_entropy_with_logits(input, target, BCEWithLogitsLossOptions(options).weight(weight).pos_weight(pos_weight));
}
std::string BCEWithLogitsLossImpl::extra_repr() const { return fmt::format("reduction={}", options.reduction()); }

KLDivLossImpl::KLDivLossImpl(const KLDivLossOptions& options_) : options(options_) {
  parse_reduction("KLDivLoss", options.reduction(), /*allow_batchmean=*/true);
}
Tensor KLDivLossImpl::forward(const Tensor& input, const Tensor& target) { return functional::kl_div(input, target, options); }
std::string KLDivLossImpl::extra_repr() const { return fmt::format("reduction={}, log_target={}", options.reduction(), options.log_target()); }

// ---- regularisation ---------------------------------------------------------------------------------------
namespace {
bool is_bias_name(const std::string& name) {
  static const std::string suffix = ".bias";
  return name == "bias" || (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0);
}

template <class F>
Tensor parameter_penalty(const Module& module, bool include_biases, F per_parameter) {
  Tensor total;
  for (const auto& [name, parameter] : module.named_parameters()) {
    if (!include_biases && is_bias_name(name)) continue;
    Tensor term = per_parameter(parameter);
    total = total.defined() ? add(total, term) : term;
  }
  if (!total.defined()) {
    // No parameter counted: a zero of the module's dtype (float32 when it has no parameters at all).
    TensorList all = module.parameters();
    return zeros({}, all.empty() ? kFloat32 : all.front().dtype());
  }
  return total;
}
}  // namespace

Tensor l2_penalty(const Module& module, bool include_biases) {
  return parameter_penalty(module, include_biases, [](const Tensor& p) { return sum(mul(p, p)); });
}

Tensor l1_penalty(const Module& module, bool include_biases) {
  return parameter_penalty(module, include_biases, [](const Tensor& p) { return sum(abs(p)); });
}

}  // namespace xg::nn
