// Pooling. Every input is seen as planes [P, H, W] (P = N*C or C; a 1-D input has H = 1), so
// batched, unbatched, 1-D and 2-D inputs share one kernel per pooling kind with no reshapes.
// Max pooling records the argmax of each window; its backward scatters to those positions through a
// primitive whose backward is the matching gather (and vice versa). Average pooling (fixed or
// adaptive windows) is a linear map whose backward is its adjoint, again a primitive pair.
#include "xgrad/nn/pooling.hpp"

#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "xgrad/autograd/kernels.hpp"
#include "xgrad/autograd/parallel.hpp"

namespace xg::nn {

using autograd::BackwardContext;
using autograd::record;
using autograd::should_record;

namespace {

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }  // b > 0
int64_t ceil_div(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }  // b > 0

/// PyTorch's pooling_output_shape: with ceil_mode the last window must start inside the input or
/// the left padding, otherwise it is dropped.
/// Checked: huge padding, kernel, dilation or stride is an xg::Error naming `op`, not a wrapped size.
int64_t pooled_size(const char* op, int64_t in, int64_t kernel, int64_t pad, int64_t stride, int64_t dilation, bool ceil_mode) {
  using detail::checked_add;
  using detail::checked_mul;
  const int64_t padded = checked_add(op, in, checked_mul(op, 2, pad, "padding"), "padded input size");
  const int64_t span = padded - checked_add(op, checked_mul(op, dilation, kernel - 1, "dilated kernel size"), 1, "dilated kernel size");
  int64_t out = floor_div(checked_add(op, span, ceil_mode ? stride - 1 : 0, "padded input size"), stride) + 1;
  // (out - 1) * stride lies in [span, span + stride - 1], both checked above: no overflow.
  if (ceil_mode && (out - 1) * stride >= in + pad) --out;
  return out;
}

/// The input seen as [planes, height, width]; `batched` tells whether dim 0 is the batch.
struct Planes {
  int64_t planes = 1, height = 1, width = 1;
  Shape shape;  // the input's shape
};

/// Checks rank (D + 1 or D + 2) and non-empty spatial dims; returns the planes view.
template <size_t D>
Planes planes_of(const char* op, const Tensor& input) {
  XG_CHECK(input.defined(), "{}: the input tensor is undefined", op);
  XG_CHECK(input.is_floating_point(), "{}: expected a float32 or float64 input, got {}", op, input.dtype());
  const Shape s = input.shape();
  XG_CHECK(input.dim() == int64_t(D) + 1 || input.dim() == int64_t(D) + 2, "{}: expected a {}-D (unbatched) or {}-D (batched) input, got shape {}",
           op, D + 1, D + 2, shape_string(s));
  Planes p;
  p.shape = s;
  p.width = s.back();
  if (D == 2) p.height = s[s.size() - 2];
  bool spatial_nonempty = p.width > 0 && p.height > 0;
  XG_CHECK(spatial_nonempty, "{}: expected an input with non-empty spatial dimensions, got shape {}", op, shape_string(s));
  p.planes = input.numel() / (p.height * p.width);
  return p;
}

/// The input's shape with the last D dims replaced by the output sizes.
template <size_t D>
Shape pooled_shape(const Shape& input_shape, const std::array<int64_t, 2>& out) {
  Shape s(input_shape.begin(), input_shape.end() - D);
  if (D == 2) s.push_back(out[0]);
  s.push_back(out[1]);
  return s;
}

// ---- max pooling ---------------------------------------------------------------------------------

struct MaxPoolGeometry {
  int64_t planes = 1, in_h = 1, in_w = 1, out_h = 1, out_w = 1;
  int64_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dilation_h = 1, dilation_w = 1;
  Shape input_shape, output_shape;
};

/// The taps t in [0, kernel) with start + t * dilation inside [0, size): [begin, end).
std::pair<int64_t, int64_t> inside_taps(int64_t start, int64_t dilation, int64_t size, int64_t kernel) {
  const int64_t begin = std::clamp<int64_t>(ceil_div(-start, dilation), 0, kernel);
  const int64_t end = std::clamp<int64_t>(ceil_div(size - start, dilation), begin, kernel);
  return {begin, end};
}

/// One window of a max pool: PyTorch's scan, the first strict maximum wins and a NaN propagates.
template <class T>
inline void max_of_window(const T* plane, int64_t first_row, int64_t rows, int64_t row_step, int64_t first_col, int64_t cols,
                          int64_t col_step, T& best_value, int64_t& best_index) {
  T best = -std::numeric_limits<T>::infinity();
  int64_t best_at = rows > 0 && cols > 0 ? first_row + first_col : -1;
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t row = first_row + i * row_step;
    for (int64_t j = 0; j < cols; ++j) {
      const int64_t at = row + first_col + j * col_step;
      const T v = plane[at];
      if (v > best || std::isnan(v)) {
        best = v;
        best_at = at;
      }
    }
  }
  best_value = best;
  best_index = best_at;
}

template <class T>
void max_pool_kernel(const T* input, T* values, int64_t* indices, const MaxPoolGeometry& g) {
  const int64_t H = g.in_h, W = g.in_w, OH = g.out_h, OW = g.out_w;
  // The taps inside the image depend only on oh (rows) and ow (columns): compute them once per call
  // instead of per window (two integer divisions per window and axis were ~40 % of a small CNN's
  // training step; bench/README.md).
  std::vector<int64_t> row_first(OH), row_count(OH), col_first(OW), col_count(OW);
  for (int64_t oh = 0; oh < OH; ++oh) {
    const int64_t h0 = oh * g.stride_h - g.pad_h;
    const auto [begin, end] = inside_taps(h0, g.dilation_h, H, g.kernel_h);
    row_first[oh] = (h0 + begin * g.dilation_h) * W;
    row_count[oh] = end - begin;
  }
  for (int64_t ow = 0; ow < OW; ++ow) {
    const int64_t w0 = ow * g.stride_w - g.pad_w;
    const auto [begin, end] = inside_taps(w0, g.dilation_w, W, g.kernel_w);
    col_first[ow] = w0 + begin * g.dilation_w;
    col_count[ow] = end - begin;
  }
  const int64_t row_step = g.dilation_h * W, col_step = g.dilation_w;
  // The common 2x2, stride 2 window with every tap inside: the same scan, unrolled.
  const bool two_by_two = g.kernel_h == 2 && g.kernel_w == 2 && g.stride_h == 2 && g.stride_w == 2 && g.dilation_h == 1 &&
                          g.dilation_w == 1 && g.pad_h == 0 && g.pad_w == 0 && 2 * OH <= H && 2 * OW <= W;
  parallel_for(0, g.planes, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, H * W)), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const T* plane = input + p * H * W;
      T* value = values + p * OH * OW;
      int64_t* index = indices + p * OH * OW;
      if (two_by_two) {
        for (int64_t oh = 0; oh < OH; ++oh) {
          const int64_t top = 2 * oh * W, bottom = top + W;
          T* value_row = value + oh * OW;
          int64_t* index_row = index + oh * OW;
          // Branch-free (selects instead of jumps: with real data the comparisons are unpredictable,
          // and the branchy scan still took 18 % of the small CNN's step). Starting from the first tap
          // is the same as starting from -inf: a first tap of -inf keeps -inf and its own index.
#pragma omp simd
          for (int64_t ow = 0; ow < OW; ++ow) {
            const int64_t a = top + 2 * ow, b = a + 1, c = bottom + 2 * ow, d = c + 1;
            T best = plane[a];
            int64_t best_at = a;
            const T vb = plane[b], vc = plane[c], vd = plane[d];
            const bool take_b = (vb > best) | (vb != vb);  // v != v: NaN, which propagates; | not ||: no branch
            best = take_b ? vb : best;
            best_at = take_b ? b : best_at;
            const bool take_c = (vc > best) | (vc != vc);
            best = take_c ? vc : best;
            best_at = take_c ? c : best_at;
            const bool take_d = (vd > best) | (vd != vd);
            best = take_d ? vd : best;
            best_at = take_d ? d : best_at;
            value_row[ow] = best;
            index_row[ow] = best_at;
          }
        }
        continue;
      }
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow)
          max_of_window(plane, row_first[oh], row_count[oh], row_step, col_first[ow], col_count[ow], col_step, value[oh * OW + ow],
                        index[oh * OW + ow]);
    }
  });
}

Tensor max_pool_gather(const Tensor& grad_input, const Tensor& indices, const MaxPoolGeometry& g);

/// The max-pool backward primitive: grad_output [.., H', W'] scattered (added) to the argmax
/// positions of an input-shaped zero tensor. Its backward is max_pool_gather.
Tensor max_pool_scatter(const Tensor& grad_output, const Tensor& indices, const MaxPoolGeometry& g) {
  const int64_t area = g.in_h * g.in_w, positions = g.out_h * g.out_w;
  Tensor out = detail::dispatch_floating("max_pool backward", grad_output, [&](auto tag) {
    using T = decltype(tag);
    Array<T> result = detail::new_array<T>(g.input_shape);
    const Tensor from_dense = xg::detail::dense(grad_output);
    const T* from = from_dense.contiguous_data<T>();
    const Tensor index_dense = xg::detail::dense(indices);
    const int64_t* index = index_dense.contiguous_data<int64_t>();
    parallel_for(0, g.planes, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, area)), [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) {
        T* to = result.data() + p * area;
        std::fill(to, to + area, T(0));
        for (int64_t o = p * positions; o < (p + 1) * positions; ++o)
          if (index[o] >= 0) to[index[o]] += from[o];
      }
    });
    return detail::make_tensor(std::move(result));
  });
  if (should_record({&grad_output})) {
    record("MaxPoolBackwardBackward", {grad_output}, out, {indices},
           [g](const BackwardContext& ctx, const Tensor& grad) { return TensorList{max_pool_gather(grad, ctx.saved(0), g)}; });
  }
  return out;
}

/// The adjoint of max_pool_scatter: out[.., h', w'] = grad_input[.., argmax(h', w')]. Backward: max_pool_scatter.
Tensor max_pool_gather(const Tensor& grad_input, const Tensor& indices, const MaxPoolGeometry& g) {
  const int64_t area = g.in_h * g.in_w, positions = g.out_h * g.out_w;
  Tensor out = detail::dispatch_floating("max_pool backward", grad_input, [&](auto tag) {
    using T = decltype(tag);
    Array<T> result = detail::new_array<T>(g.output_shape);
    const Tensor from_dense = xg::detail::dense(grad_input);
    const T* from = from_dense.contiguous_data<T>();
    const Tensor index_dense = xg::detail::dense(indices);
    const int64_t* index = index_dense.contiguous_data<int64_t>();
    parallel_for(0, g.planes, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, area)), [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) {
        const T* plane = from + p * area;
        for (int64_t o = p * positions; o < (p + 1) * positions; ++o) result.data()[o] = index[o] >= 0 ? plane[index[o]] : T(0);
      }
    });
    return detail::make_tensor(std::move(result));
  });
  if (should_record({&grad_input})) {
    record("MaxPoolGatherBackward", {grad_input}, out, {indices},
           [g](const BackwardContext& ctx, const Tensor& grad) { return TensorList{max_pool_scatter(grad, ctx.saved(0), g)}; });
  }
  return out;
}

template <size_t D>
std::tuple<Tensor, Tensor> max_pool(const char* op, const Tensor& input, const ExpandingArray<D>& kernel_size,
                                    const std::optional<ExpandingArray<D>>& stride_given, const ExpandingArray<D>& padding,
                                    const ExpandingArray<D>& dilation, bool ceil_mode) {
  const Planes planes = planes_of<D>(op, input);
  const ExpandingArray<D> stride = stride_given ? *stride_given : kernel_size;
  for (size_t d = 0; d < D; ++d) {
    XG_CHECK(kernel_size[d] > 0, "{}: kernel_size must be positive, got {}", op, kernel_size.tuple_string());
    XG_CHECK(stride[d] > 0, "{}: stride must be positive, got {}", op, stride.tuple_string());
    XG_CHECK(dilation[d] > 0, "{}: dilation must be positive, got {}", op, dilation.tuple_string());
    XG_CHECK(padding[d] >= 0 && padding[d] <= kernel_size[d] / 2,
             "{}: pad should be at most half of kernel size, but got padding={} for kernel_size={}", op, padding.tuple_string(),
             kernel_size.tuple_string());
  }
  std::array<int64_t, 2> kernel{1, 1}, step{1, 1}, pad{0, 0}, spread{1, 1}, in{planes.height, planes.width}, out{1, 1};
  for (size_t d = 0; d < D; ++d) {
    const size_t a = 2 - D + d;
    kernel[a] = kernel_size[d];
    step[a] = stride[d];
    pad[a] = padding[d];
    spread[a] = dilation[d];
  }
  for (size_t a = 0; a < 2; ++a) out[a] = pooled_size(op, in[a], kernel[a], pad[a], step[a], spread[a], ceil_mode);
  XG_CHECK(out[0] > 0 && out[1] > 0,
           "{}: given input of shape {}, the calculated output size ({}) is too small (kernel_size={}, stride={}, padding={}, dilation={})",
           op, shape_string(planes.shape), D == 2 ? fmt::format("{} x {}", out[0], out[1]) : fmt::format("{}", out[1]),
           kernel_size.tuple_string(), stride.tuple_string(), padding.tuple_string(), dilation.tuple_string());
  MaxPoolGeometry g;
  g.planes = planes.planes;
  g.in_h = in[0];
  g.in_w = in[1];
  g.out_h = out[0];
  g.out_w = out[1];
  g.kernel_h = kernel[0];
  g.kernel_w = kernel[1];
  g.stride_h = step[0];
  g.stride_w = step[1];
  g.pad_h = pad[0];
  g.pad_w = pad[1];
  g.dilation_h = spread[0];
  g.dilation_w = spread[1];
  g.input_shape = planes.shape;
  g.output_shape = pooled_shape<D>(planes.shape, out);

  Array<int64_t> index_array = detail::new_array<int64_t>(g.output_shape);
  Tensor values = detail::dispatch_floating(op, input, [&](auto tag) {
    using T = decltype(tag);
    Array<T> result = detail::new_array<T>(g.output_shape);
    max_pool_kernel<T>(xg::detail::dense(input).contiguous_data<T>(), result.data(), index_array.data(), g);
    return detail::make_tensor(std::move(result));
  });
  Tensor indices = detail::make_tensor(std::move(index_array));
  if (should_record({&input})) {
    record(D == 1 ? "MaxPool1DWithIndicesBackward" : "MaxPool2DWithIndicesBackward", {input}, values, {indices},
           [g](const BackwardContext& ctx, const Tensor& grad) { return TensorList{max_pool_scatter(grad, ctx.saved(0), g)}; });
    autograd::mark_piecewise_linear(values);  // double backward: zeros that require grad, as PyTorch
  }
  autograd::check_forward_anomaly(op, values);
  return {values, indices};
}

// ---- average pooling -------------------------------------------------------------------------------

/// Rectangular windows given per output row and column (clipped to the input), with a divisor per
/// output element: covers avg_pool2d (all its options) and adaptive_avg_pool2d.
struct WindowGeometry {
  int64_t planes = 1, in_h = 1, in_w = 1;
  std::vector<int64_t> row_begin, row_end, col_begin, col_end;
  std::vector<double> divisor;  // [out_h * out_w]
  Shape input_shape, output_shape;
  int64_t out_h() const { return static_cast<int64_t>(row_begin.size()); }
  int64_t out_w() const { return static_cast<int64_t>(col_begin.size()); }
};
using WindowGeometryPtr = std::shared_ptr<const WindowGeometry>;

Tensor window_sum_adjoint(const Tensor& grad_output, const WindowGeometryPtr& g);

/// The average-pooling primitive: out = (sum of the window) / divisor, 0 for an empty window.
/// Backward: window_sum_adjoint.
Tensor window_average(const Tensor& input, const WindowGeometryPtr& g) {
  const int64_t H = g->in_h, W = g->in_w, OH = g->out_h(), OW = g->out_w();
  Tensor out = detail::dispatch_floating("avg_pool2d", input, [&](auto tag) {
    using T = decltype(tag);
    Array<T> result = detail::new_array<T>(g->output_shape);
    const Tensor from_dense = xg::detail::dense(input);
    const T* from = from_dense.contiguous_data<T>();
    parallel_for(0, g->planes, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, H * W)), [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) {
        const T* plane = from + p * H * W;
        T* to = result.data() + p * OH * OW;
        for (int64_t oh = 0; oh < OH; ++oh) {
          for (int64_t ow = 0; ow < OW; ++ow) {
            T total = 0;
            for (int64_t ih = g->row_begin[oh]; ih < g->row_end[oh]; ++ih)
              for (int64_t iw = g->col_begin[ow]; iw < g->col_end[ow]; ++iw) total += plane[ih * W + iw];
            const bool empty = g->row_begin[oh] >= g->row_end[oh] || g->col_begin[ow] >= g->col_end[ow];
            to[oh * OW + ow] = empty ? T(0) : total / static_cast<T>(g->divisor[oh * OW + ow]);
          }
        }
      }
    });
    return detail::make_tensor(std::move(result));
  });
  if (should_record({&input})) {
    record("AvgPool2DBackward", {input}, out, {}, [g](const BackwardContext&, const Tensor& grad) { return TensorList{window_sum_adjoint(grad, g)}; });
    autograd::mark_piecewise_linear(out);  // PyTorch's avg_pool2d_backward(grad, self): zero self-derivative
  }
  autograd::check_forward_anomaly("avg_pool2d", out);
  return out;
}

/// The adjoint of window_average: each output gradient / divisor is added to every pixel of its
/// window. Backward: window_average.
Tensor window_sum_adjoint(const Tensor& grad_output, const WindowGeometryPtr& g) {
  const int64_t H = g->in_h, W = g->in_w, OH = g->out_h(), OW = g->out_w();
  Tensor out = detail::dispatch_floating("avg_pool2d backward", grad_output, [&](auto tag) {
    using T = decltype(tag);
    Array<T> result = detail::new_array<T>(g->input_shape);
    const Tensor from_dense = xg::detail::dense(grad_output);
    const T* from = from_dense.contiguous_data<T>();
    parallel_for(0, g->planes, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, H * W)), [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) {
        T* plane = result.data() + p * H * W;
        std::fill(plane, plane + H * W, T(0));
        const T* grad = from + p * OH * OW;
        for (int64_t oh = 0; oh < OH; ++oh) {
          for (int64_t ow = 0; ow < OW; ++ow) {
            const T share = grad[oh * OW + ow] / static_cast<T>(g->divisor[oh * OW + ow]);
            for (int64_t ih = g->row_begin[oh]; ih < g->row_end[oh]; ++ih)
              for (int64_t iw = g->col_begin[ow]; iw < g->col_end[ow]; ++iw) plane[ih * W + iw] += share;
          }
        }
      }
    });
    return detail::make_tensor(std::move(result));
  });
  if (should_record({&grad_output})) {
    record("AvgPool2DBackwardBackward", {grad_output}, out, {},
           [g](const BackwardContext&, const Tensor& grad) { return TensorList{window_average(grad, g)}; });
  }
  return out;
}

Tensor average_pool(const char* op, const Tensor& input, const ExpandingArray<2>& kernel_size,
                    const std::optional<ExpandingArray<2>>& stride_given, const ExpandingArray<2>& padding, bool ceil_mode,
                    bool count_include_pad, std::optional<int64_t> divisor_override) {
  const Planes planes = planes_of<2>(op, input);
  const ExpandingArray<2> stride = stride_given ? *stride_given : kernel_size;
  for (size_t d = 0; d < 2; ++d) {
    XG_CHECK(kernel_size[d] > 0, "{}: kernel_size must be positive, got {}", op, kernel_size.tuple_string());
    XG_CHECK(stride[d] > 0, "{}: stride must be positive, got {}", op, stride.tuple_string());
    XG_CHECK(padding[d] >= 0 && padding[d] <= kernel_size[d] / 2,
             "{}: pad should be at most half of kernel size, but got padding={} for kernel_size={}", op, padding.tuple_string(),
             kernel_size.tuple_string());
  }
  XG_CHECK(!divisor_override || *divisor_override != 0, "{}: divisor_override must be nonzero", op);
  const std::array<int64_t, 2> in{planes.height, planes.width};
  std::array<int64_t, 2> out{};
  for (size_t a = 0; a < 2; ++a) out[a] = pooled_size(op, in[a], kernel_size[a], padding[a], stride[a], 1, ceil_mode);
  XG_CHECK(out[0] > 0 && out[1] > 0,
           "{}: given input of shape {}, the calculated output size ({} x {}) is too small (kernel_size={}, stride={}, padding={})", op,
           shape_string(planes.shape), out[0], out[1], kernel_size.tuple_string(), stride.tuple_string(), padding.tuple_string());

  auto g = std::make_shared<WindowGeometry>();
  g->planes = planes.planes;
  g->in_h = in[0];
  g->in_w = in[1];
  g->input_shape = planes.shape;
  g->output_shape = pooled_shape<2>(planes.shape, out);
  // PyTorch's avg_pool2d windows: the padded extent [start, min(start + k, in + pad)) counts towards
  // the divisor with count_include_pad; the part inside the input is summed.
  std::array<std::vector<int64_t>*, 2> begins{&g->row_begin, &g->col_begin}, ends{&g->row_end, &g->col_end};
  std::array<std::vector<int64_t>, 2> padded_extent, inside_extent;
  for (size_t a = 0; a < 2; ++a) {
    for (int64_t o = 0; o < out[a]; ++o) {
      const int64_t start = o * stride[a] - padding[a];
      const int64_t stop = std::min(start + kernel_size[a], in[a] + padding[a]);
      const int64_t begin = std::max<int64_t>(start, 0), end = std::min(stop, in[a]);
      begins[a]->push_back(begin);
      ends[a]->push_back(end);
      padded_extent[a].push_back(stop - start);
      inside_extent[a].push_back(std::max<int64_t>(end - begin, 0));
    }
  }
  g->divisor.resize(static_cast<size_t>(out[0] * out[1]));
  for (int64_t oh = 0; oh < out[0]; ++oh) {
    for (int64_t ow = 0; ow < out[1]; ++ow) {
      double divisor = 0;
      if (divisor_override) divisor = static_cast<double>(*divisor_override);
      else if (count_include_pad) divisor = static_cast<double>(padded_extent[0][oh] * padded_extent[1][ow]);
      else divisor = static_cast<double>(inside_extent[0][oh] * inside_extent[1][ow]);
      g->divisor[oh * out[1] + ow] = divisor > 0 ? divisor : 1.0;  // an empty window outputs 0 anyway
    }
  }
  return window_average(input, g);
}

Tensor adaptive_average_pool(const char* op, const Tensor& input, const ExpandingArray<2>& output_size) {
  const Planes planes = planes_of<2>(op, input);
  XG_CHECK(output_size[0] > 0 && output_size[1] > 0, "{}: output_size must be positive, got {}", op, output_size.tuple_string());
  const std::array<int64_t, 2> in{planes.height, planes.width}, out{output_size[0], output_size[1]};
  // The output's size and the window bounds below ((o + 1) * in) must fit in int64.
  detail::checked_numel(op, pooled_shape<2>(planes.shape, out));
  for (size_t a = 0; a < 2; ++a) detail::checked_mul(op, out[a], in[a], "output_size x input size");
  auto g = std::make_shared<WindowGeometry>();
  g->planes = planes.planes;
  g->in_h = in[0];
  g->in_w = in[1];
  g->input_shape = planes.shape;
  g->output_shape = pooled_shape<2>(planes.shape, out);
  std::array<std::vector<int64_t>*, 2> begins{&g->row_begin, &g->col_begin}, ends{&g->row_end, &g->col_end};
  for (size_t a = 0; a < 2; ++a) {
    for (int64_t o = 0; o < out[a]; ++o) {
      begins[a]->push_back(o * in[a] / out[a]);                         // floor(o * in / out)
      ends[a]->push_back(((o + 1) * in[a] + out[a] - 1) / out[a]);        // ceil((o + 1) * in / out)
    }
  }
  g->divisor.resize(static_cast<size_t>(out[0] * out[1]));
  for (int64_t oh = 0; oh < out[0]; ++oh)
    for (int64_t ow = 0; ow < out[1]; ++ow)
      g->divisor[oh * out[1] + ow] = static_cast<double>((g->row_end[oh] - g->row_begin[oh]) * (g->col_end[ow] - g->col_begin[ow]));
  return window_average(input, g);
}

Tensor power_average_pool(const char* op, const Tensor& input, double norm_type, const ExpandingArray<2>& kernel_size,
                          const std::optional<ExpandingArray<2>>& stride, bool ceil_mode) {
  planes_of<2>(op, input);
  XG_CHECK(norm_type > 0 && std::isfinite(norm_type), "{}: norm_type must be positive and finite, got {}", op, norm_type);
  // PyTorch: (sign(a) * relu(|a|)) * kW*kH, then ^(1/p), with a = avg_pool2d(x^p). sign(a) * relu(|a|)
  // equals a, but its gradient is 0 where a = 0 (relu masks the infinite slope of ^(1/p)): an all-zero
  // window, common after a ReLU, gets gradient 0, not NaN.
  Tensor averaged = average_pool(op, xg::pow(input, norm_type), kernel_size, stride, 0, ceil_mode, true, std::nullopt);
  return detail::pow_zero_grad_at_zero(mul(averaged, static_cast<double>(kernel_size[0] * kernel_size[1])), 1.0 / norm_type);
}

std::string bool_repr(bool value) { return value ? "True" : "False"; }

}  // namespace

// ---- functional --------------------------------------------------------------------------------------
namespace functional {

Tensor max_pool1d(const Tensor& input, ExpandingArray<1> kernel_size, OptionalExpandingArray<1> stride, ExpandingArray<1> padding,
                  ExpandingArray<1> dilation, bool ceil_mode) {
  return std::get<0>(max_pool<1>("max_pool1d", input, kernel_size, stride.get(), padding, dilation, ceil_mode));
}

std::tuple<Tensor, Tensor> max_pool1d_with_indices(const Tensor& input, ExpandingArray<1> kernel_size, OptionalExpandingArray<1> stride,
                                                   ExpandingArray<1> padding, ExpandingArray<1> dilation, bool ceil_mode) {
  return max_pool<1>("max_pool1d", input, kernel_size, stride.get(), padding, dilation, ceil_mode);
}

Tensor max_pool2d(const Tensor& input, ExpandingArray<2> kernel_size, OptionalExpandingArray<2> stride, ExpandingArray<2> padding,
                  ExpandingArray<2> dilation, bool ceil_mode) {
  return std::get<0>(max_pool<2>("max_pool2d", input, kernel_size, stride.get(), padding, dilation, ceil_mode));
}

std::tuple<Tensor, Tensor> max_pool2d_with_indices(const Tensor& input, ExpandingArray<2> kernel_size, OptionalExpandingArray<2> stride,
                                                   ExpandingArray<2> padding, ExpandingArray<2> dilation, bool ceil_mode) {
  return max_pool<2>("max_pool2d", input, kernel_size, stride.get(), padding, dilation, ceil_mode);
}

Tensor avg_pool2d(const Tensor& input, ExpandingArray<2> kernel_size, OptionalExpandingArray<2> stride, ExpandingArray<2> padding,
                  bool ceil_mode, bool count_include_pad, std::optional<int64_t> divisor_override) {
  return average_pool("avg_pool2d", input, kernel_size, stride.get(), padding, ceil_mode, count_include_pad, divisor_override);
}

Tensor adaptive_avg_pool2d(const Tensor& input, ExpandingArray<2> output_size) {
  return adaptive_average_pool("adaptive_avg_pool2d", input, output_size);
}

Tensor lp_pool2d(const Tensor& input, double norm_type, ExpandingArray<2> kernel_size, OptionalExpandingArray<2> stride,
                 bool ceil_mode) {
  return power_average_pool("lp_pool2d", input, norm_type, kernel_size, stride.get(), ceil_mode);
}

}  // namespace functional

// ---- modules -----------------------------------------------------------------------------------------
template <size_t D>
MaxPoolNdImpl<D>::MaxPoolNdImpl(const MaxPoolOptions<D>& options_) : Module(D == 1 ? "MaxPool1d" : "MaxPool2d"), options(options_) {
  const char* layer = D == 1 ? "MaxPool1d" : "MaxPool2d";
  for (size_t d = 0; d < D; ++d) {
    XG_CHECK(options.kernel_size()[d] > 0, "{}: kernel_size must be positive, got {}", layer, options.kernel_size().tuple_string());
    XG_CHECK(options.stride()[d] > 0, "{}: stride must be positive, got {}", layer, options.stride().tuple_string());
    XG_CHECK(options.dilation()[d] > 0, "{}: dilation must be positive, got {}", layer, options.dilation().tuple_string());
    XG_CHECK(options.padding()[d] >= 0 && options.padding()[d] <= options.kernel_size()[d] / 2,
             "{}: pad should be at most half of kernel size, but got padding={} for kernel_size={}", layer,
             options.padding().tuple_string(), options.kernel_size().tuple_string());
  }
}

template <size_t D>
std::tuple<Tensor, Tensor> MaxPoolNdImpl<D>::forward_with_indices(const Tensor& input) {
  return max_pool<D>(D == 1 ? "MaxPool1d" : "MaxPool2d", input, options.kernel_size(), options.stride(), options.padding(),
                     options.dilation(), options.ceil_mode());
}

template <size_t D>
Tensor MaxPoolNdImpl<D>::forward(const Tensor& input) {
  return std::get<0>(forward_with_indices(input));
}

template <size_t D>
std::string MaxPoolNdImpl<D>::extra_repr() const {
  return fmt::format("kernel_size={}, stride={}, padding={}, dilation={}, ceil_mode={}", options.kernel_size().repr(),
                     options.stride().repr(), options.padding().repr(), options.dilation().repr(), bool_repr(options.ceil_mode()));
}

template class MaxPoolNdImpl<1>;
template class MaxPoolNdImpl<2>;

AvgPool2dImpl::AvgPool2dImpl(const AvgPool2dOptions& options_) : Module("AvgPool2d"), options(options_) {
  for (size_t d = 0; d < 2; ++d) {
    XG_CHECK(options.kernel_size()[d] > 0, "AvgPool2d: kernel_size must be positive, got {}", options.kernel_size().tuple_string());
    XG_CHECK(options.stride()[d] > 0, "AvgPool2d: stride must be positive, got {}", options.stride().tuple_string());
    XG_CHECK(options.padding()[d] >= 0 && options.padding()[d] <= options.kernel_size()[d] / 2,
             "AvgPool2d: pad should be at most half of kernel size, but got padding={} for kernel_size={}",
             options.padding().tuple_string(), options.kernel_size().tuple_string());
  }
  XG_CHECK(!options.divisor_override() || *options.divisor_override() != 0, "AvgPool2d: divisor_override must be nonzero");
}

Tensor AvgPool2dImpl::forward(const Tensor& input) {
  return average_pool("AvgPool2d", input, options.kernel_size(), options.stride(), options.padding(), options.ceil_mode(),
                      options.count_include_pad(), options.divisor_override());
}

std::string AvgPool2dImpl::extra_repr() const {
  return fmt::format("kernel_size={}, stride={}, padding={}", options.kernel_size().repr(), options.stride().repr(),
                     options.padding().repr());
}

AdaptiveAvgPool2dImpl::AdaptiveAvgPool2dImpl(const AdaptiveAvgPool2dOptions& options_) : Module("AdaptiveAvgPool2d"), options(options_) {
  XG_CHECK(options.output_size()[0] > 0 && options.output_size()[1] > 0, "AdaptiveAvgPool2d: output_size must be positive, got {}",
           options.output_size().tuple_string());
}

Tensor AdaptiveAvgPool2dImpl::forward(const Tensor& input) {
  return adaptive_average_pool("AdaptiveAvgPool2d", input, options.output_size());
}

std::string AdaptiveAvgPool2dImpl::extra_repr() const { return fmt::format("output_size={}", options.output_size().repr()); }

LPPool2dImpl::LPPool2dImpl(const LPPool2dOptions& options_) : Module("LPPool2d"), options(options_) {
  XG_CHECK(options.norm_type() > 0 && std::isfinite(options.norm_type()), "LPPool2d: norm_type must be positive and finite, got {}",
           options.norm_type());
  for (size_t d = 0; d < 2; ++d) {
    XG_CHECK(options.kernel_size()[d] > 0, "LPPool2d: kernel_size must be positive, got {}", options.kernel_size().tuple_string());
    XG_CHECK(!options.stride() || (*options.stride())[d] > 0, "LPPool2d: stride must be positive, got {}", options.stride()->tuple_string());
  }
}

Tensor LPPool2dImpl::forward(const Tensor& input) {
  return power_average_pool("LPPool2d", input, options.norm_type(), options.kernel_size(), options.stride(), options.ceil_mode());
}

std::string LPPool2dImpl::extra_repr() const {
  return fmt::format("norm_type={}, kernel_size={}, stride={}, ceil_mode={}", options.norm_type(), options.kernel_size().repr(),
                     options.stride() ? options.stride()->repr() : "None", bool_repr(options.ceil_mode()));
}

}  // namespace xg::nn
