// Convolution as im2col + GEMM. The input is unfolded into a patch matrix laid out [C*kH*kW, N*L]
// (the batch folded into the columns), so one xg::gemm batched over the groups,
// [G, out/G, C/G*kH*kW] x [G, C/G*kH*kW, N*L], computes the whole convolution, and its backward is
// two more GEMMs of the same size. A fused step moves [out, N*L] to [N, out, L] and adds the bias.
// The three data-movement steps are primitives whose backward is their adjoint (im2col <-> col2im,
// columns -> output <-> output -> columns), written as calls of each other, so the tape can
// differentiate any number of times. Conv1d is Conv2d with H = 1, done by shape bookkeeping only.
#include "xgrad/nn/conv.hpp"

#include <algorithm>
#include <cmath>

#include "xgrad/autograd/kernels.hpp"
#include "xgrad/autograd/parallel.hpp"
#include "xgrad/nn/init.hpp"

namespace xg::nn {

using autograd::BackwardContext;
using autograd::record;
using autograd::should_record;

namespace {

/// Where the sliding windows sit on an image ([N, C, H, W], or any shape with that many elements),
/// and how the patch matrix is laid out.
struct PatchGeometry {
  int64_t batch = 1, channels = 1, height = 1, width = 1;
  int64_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1;
  int64_t pad_top = 0, pad_left = 0, dilation_h = 1, dilation_w = 1;
  int64_t out_h = 1, out_w = 1;
  // false: unfold's [N, C*kH*kW, L]; true: the convolution's [C*kH*kW, N*L], so that one GEMM
  // covers the whole batch with no transposed copy.
  bool batch_in_columns = false;
  Shape image_shape, columns_shape;

  int64_t positions() const { return out_h * out_w; }
  int64_t rows() const { return channels * kernel_h * kernel_w; }
  // Element (n, row, position) of the patch matrix is at n * batch_stride + row * row_stride + position.
  int64_t batch_stride() const { return batch_in_columns ? positions() : rows() * positions(); }
  int64_t row_stride() const { return batch_in_columns ? batch * positions() : positions(); }
};

int64_t ceil_div(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }  // b > 0

/// The outputs o in [0, count) whose tap o * stride + offset lies inside [0, size): [begin, end).
std::pair<int64_t, int64_t> inside_range(int64_t offset, int64_t stride, int64_t size, int64_t count) {
  const int64_t begin = std::clamp<int64_t>(ceil_div(-offset, stride), 0, count);
  const int64_t end = std::clamp<int64_t>(ceil_div(size - offset, stride), begin, count);
  return {begin, end};
}

/// ToColumns: columns = im2col(image) (taps outside the image are 0).
/// Otherwise: image = col2im(columns) (the adjoint: every tap adds back to the pixel it read).
template <class T, bool ToColumns>
void transfer_patches(const PatchGeometry& g, std::conditional_t<ToColumns, const T*, T*> image,
                      std::conditional_t<ToColumns, T*, const T*> columns) {
  const int64_t H = g.height, W = g.width, OH = g.out_h, OW = g.out_w;
  const int64_t batch_stride = g.batch_stride(), row_stride = g.row_stride();
  // Planes (n, c) touch disjoint image planes and disjoint patch rows: split over them.
  const int64_t plane_work = std::max<int64_t>(1, g.kernel_h * g.kernel_w * OH * OW);
  parallel_for(0, g.batch * g.channels, std::max<int64_t>(1, kElementwiseGrain / plane_work), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t n = p / g.channels, c = p % g.channels;
      auto* plane = image + p * H * W;
      if constexpr (!ToColumns) std::fill(plane, plane + H * W, T(0));
      for (int64_t i = 0; i < g.kernel_h; ++i) {
        const int64_t offset_h = i * g.dilation_h - g.pad_top;
        const auto [oh_begin, oh_end] = inside_range(offset_h, g.stride_h, H, OH);
        for (int64_t j = 0; j < g.kernel_w; ++j) {
          const int64_t offset_w = j * g.dilation_w - g.pad_left;
          const auto [ow_begin, ow_end] = inside_range(offset_w, g.stride_w, W, OW);
          const int64_t row = (c * g.kernel_h + i) * g.kernel_w + j;
          auto* column = columns + n * batch_stride + row * row_stride;
          if constexpr (ToColumns) {
            std::fill(column, column + oh_begin * OW, T(0));
            std::fill(column + oh_end * OW, column + OH * OW, T(0));
          }
          for (int64_t oh = oh_begin; oh < oh_end; ++oh) {
            // Pixel (ih, ow * stride_w + offset_w) is plane[base + ow * stride_w].
            const int64_t base = (oh * g.stride_h + offset_h) * W + offset_w;
            auto* line = column + oh * OW;
            if constexpr (ToColumns) {
              std::fill(line, line + ow_begin, T(0));
              if (g.stride_w == 1) {
                std::copy(plane + base + ow_begin, plane + base + ow_end, line + ow_begin);
              } else {
                for (int64_t ow = ow_begin; ow < ow_end; ++ow) line[ow] = plane[base + ow * g.stride_w];
              }
              std::fill(line + ow_end, line + OW, T(0));
            } else {
              for (int64_t ow = ow_begin; ow < ow_end; ++ow) plane[base + ow * g.stride_w] += line[ow];
            }
          }
        }
      }
    }
  });
}

Tensor fold_patches(const Tensor& columns, const PatchGeometry& g);

/// The im2col primitive: image -> patch matrix of g.columns_shape. Backward: fold_patches.
Tensor unfold_patches(const Tensor& image, const PatchGeometry& g) {
  XG_CHECK(image.numel() == g.batch * g.channels * g.height * g.width, "im2col: input of shape {} does not match the geometry {}",
           shape_string(image.shape()), shape_string(g.image_shape));
  Tensor out = detail::dispatch_floating("im2col", image, [&](auto tag) {
    using T = decltype(tag);
    Array<T> columns = detail::new_array<T>(g.columns_shape);
    transfer_patches<T, true>(g, xg::detail::dense(image).contiguous_data<T>(), columns.data());
    return detail::make_tensor(std::move(columns));
  });
  if (should_record({&image})) {
    record("Im2ColBackward", {image}, out, {}, [g](const BackwardContext&, const Tensor& grad) { return TensorList{fold_patches(grad, g)}; });
  }
  autograd::check_forward_anomaly("im2col", out);
  return out;
}

/// The col2im primitive: patch matrix -> image of g.image_shape, overlaps summed. Backward: unfold_patches.
Tensor fold_patches(const Tensor& columns, const PatchGeometry& g) {
  XG_CHECK(columns.numel() == g.rows() * g.batch * g.positions(), "col2im: input of shape {} does not match the geometry {}",
           shape_string(columns.shape()), shape_string(g.columns_shape));
  Tensor out = detail::dispatch_floating("col2im", columns, [&](auto tag) {
    using T = decltype(tag);
    Array<T> image = detail::new_array<T>(g.image_shape);  // zeroed plane by plane in transfer_patches
    transfer_patches<T, false>(g, image.data(), xg::detail::dense(columns).contiguous_data<T>());
    return detail::make_tensor(std::move(image));
  });
  if (should_record({&columns})) {
    record("Col2ImBackward", {columns}, out, {}, [g](const BackwardContext&, const Tensor& grad) { return TensorList{unfold_patches(grad, g)}; });
  }
  autograd::check_forward_anomaly("col2im", out);
  return out;
}

/// The GEMM result [out, N*L] (any shape with those elements) and the convolution's output
/// [N, out, L...] (or [out, L...] unbatched), whose channel dimension is channel_dim.
struct OutputLayout {
  int64_t batch = 1, channels = 1, positions = 1, channel_dim = 1;
  Shape columns_shape, output_shape;
};

Tensor output_to_columns(const Tensor& output, const OutputLayout& layout);

/// output[n, o, l] = columns[o, n*L + l] + bias[o] in one pass. Backward: output_to_columns, and the
/// bias gradient summed over every dimension but the channels.
Tensor columns_to_output(const Tensor& columns, const Tensor& bias, const OutputLayout& layout) {
  const int64_t N = layout.batch, O = layout.channels, L = layout.positions;
  Tensor out = detail::dispatch_floating("conv", columns, [&](auto tag) {
    using T = decltype(tag);
    Array<T> result = detail::new_array<T>(layout.output_shape);
    const Tensor source_dense = xg::detail::dense(columns);
    const T* source = source_dense.contiguous_data<T>();
    const Tensor shift_dense = bias.defined() ? xg::detail::dense(bias) : Tensor();
    const T* shift = shift_dense.defined() ? shift_dense.contiguous_data<T>() : nullptr;
    parallel_for(0, N, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, O * L)), [&](int64_t n0, int64_t n1) {
      for (int64_t n = n0; n < n1; ++n) {
        for (int64_t o = 0; o < O; ++o) {
          const T* from = source + (o * N + n) * L;
          T* to = result.data() + (n * O + o) * L;
          if (shift == nullptr) {
            std::copy(from, from + L, to);
          } else {
            const T b = shift[o];
            for (int64_t l = 0; l < L; ++l) to[l] = from[l] + b;
          }
        }
      }
    });
    return detail::make_tensor(std::move(result));
  });
  if (should_record({&columns, &bias})) {
    record("ConvOutputBackward", {columns, bias}, out, {}, [layout](const BackwardContext& ctx, const Tensor& grad) {
      Tensor grad_columns, grad_bias;
      if (ctx.needs_grad(0)) grad_columns = output_to_columns(grad, layout);
      if (ctx.needs_grad(1)) {
        std::vector<int64_t> dims;
        for (int64_t d = 0; d < static_cast<int64_t>(layout.output_shape.size()); ++d)
          if (d != layout.channel_dim) dims.push_back(d);
        grad_bias = sum(grad, dims);
      }
      return TensorList{grad_columns, grad_bias};
    });
  }
  autograd::check_forward_anomaly("conv", out);
  return out;
}

/// The adjoint move: columns[o, n*L + l] = output[n, o, l]. Backward: columns_to_output without bias.
Tensor output_to_columns(const Tensor& output, const OutputLayout& layout) {
  const int64_t N = layout.batch, O = layout.channels, L = layout.positions;
  Tensor out = detail::dispatch_floating("conv", output, [&](auto tag) {
    using T = decltype(tag);
    Array<T> result = detail::new_array<T>(layout.columns_shape);
    const Tensor source_dense = xg::detail::dense(output);
    const T* source = source_dense.contiguous_data<T>();
    parallel_for(0, N, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, O * L)), [&](int64_t n0, int64_t n1) {
      for (int64_t n = n0; n < n1; ++n)
        for (int64_t o = 0; o < O; ++o) std::copy_n(source + (n * O + o) * L, L, result.data() + (o * N + n) * L);
    });
    return detail::make_tensor(std::move(result));
  });
  if (should_record({&output})) {
    record("ConvOutputBackwardBackward", {output}, out, {},
           [layout](const BackwardContext&, const Tensor& grad) { return TensorList{columns_to_output(grad, Tensor(), layout)}; });
  }
  return out;
}

template <size_t D>
std::string join_sizes(const std::array<int64_t, D>& values) {
  return fmt::format("{}", fmt::join(values, " x "));
}

/// conv1d / conv2d (D = 1 / 2); `op` names the caller in errors ("conv2d", or "Conv2d" from the module).
template <size_t D>
Tensor convolution(const char* op, const Tensor& input, const Tensor& weight, const Tensor& bias, const ExpandingArray<D>& stride,
                   const ConvPadding<D>& padding, const ExpandingArray<D>& dilation, int64_t groups) {
  XG_CHECK(input.defined(), "{}: the input tensor is undefined", op);
  XG_CHECK(weight.defined(), "{}: the weight tensor is undefined", op);
  XG_CHECK(input.is_floating_point(), "{}: expected a float32 or float64 input, got {}", op, input.dtype());
  XG_CHECK(weight.dtype() == input.dtype(), "{}: expected input and weight of the same dtype, got {} and {}", op, input.dtype(),
           weight.dtype());
  const Shape xs = input.shape(), ws = weight.shape();
  const int64_t rank = input.dim();
  XG_CHECK(rank == int64_t(D) + 1 || rank == int64_t(D) + 2, "{}: expected a {}-D (unbatched) or {}-D (batched) input, got shape {}", op,
           D + 1, D + 2, shape_string(xs));
  XG_CHECK(weight.dim() == int64_t(D) + 2, "{}: expected a {}-D weight [out_channels, in_channels / groups, {}], got shape {}", op, D + 2,
           D == 2 ? "kH, kW" : "kL", shape_string(ws));
  XG_CHECK(groups > 0, "{}: groups must be a positive integer, got {}", op, groups);
  const bool batched = rank == int64_t(D) + 2;
  const int64_t batch = batched ? xs[0] : 1, channels = xs[batched ? 1 : 0];
  const int64_t out_channels = ws[0], group_channels = ws[1];
  XG_CHECK(out_channels % groups == 0, "{}: out_channels ({}, the first dimension of the weight of shape {}) must be divisible by groups ({})",
           op, out_channels, shape_string(ws), groups);
  const int64_t expected_channels = detail::checked_mul(op, group_channels, groups, "in_channels (weight.size(1) * groups)");
  XG_CHECK(channels == expected_channels, "{}: expected input with {} channels, got shape {} (weight of shape {}, groups={})", op,
           expected_channels, shape_string(xs), shape_string(ws), groups);
  if (bias.defined()) {
    XG_CHECK(bias.dtype() == input.dtype(), "{}: expected a bias of dtype {}, got {}", op, input.dtype(), bias.dtype());
    XG_CHECK(bias.dim() == 1 && bias.numel() == out_channels, "{}: expected a bias of shape [{}], got {}", op, out_channels,
             shape_string(bias.shape()));
  }
  for (size_t d = 0; d < D; ++d) {
    XG_CHECK(stride[d] > 0, "{}: stride must be positive, got {}", op, stride.tuple_string());
    XG_CHECK(dilation[d] > 0, "{}: dilation must be positive, got {}", op, dilation.tuple_string());
    XG_CHECK(padding.amounts()[d] >= 0, "{}: negative padding is not supported, got {}", op, padding.amounts().tuple_string());
  }
  if (padding.is_same()) {
    for (size_t d = 0; d < D; ++d)
      XG_CHECK(stride[d] == 1, "{}: padding='same' is not supported for strided convolutions (stride={})", op, stride.tuple_string());
  }

  // Spatial sizes as 2-D: for D = 1 the height is a dimension of size 1 with a 1-tap kernel.
  std::array<int64_t, 2> size{1, 1}, kernel{1, 1}, step{1, 1}, spread{1, 1}, before{0, 0}, out{1, 1};
  std::array<int64_t, D> padded{}, dilated{};
  for (size_t d = 0; d < D; ++d) {
    const size_t a = 2 - D + d;
    size[a] = xs[rank - D + d];
    kernel[a] = ws[2 + d];
    step[a] = stride[d];
    spread[a] = dilation[d];
    XG_CHECK(kernel[a] > 0, "{}: expected a positive kernel size, got weight of shape {}", op, shape_string(ws));
    const int64_t effective = detail::checked_add(op, detail::checked_mul(op, spread[a], kernel[a] - 1, "dilated kernel size"), 1, "dilated kernel size");
    if (padding.is_same()) {
      // PyTorch's rule: total d*(k-1), the smaller half before, the extra element after.
      before[a] = spread[a] * (kernel[a] - 1) / 2;
      out[a] = size[a];
    } else {
      before[a] = padding.is_valid() ? 0 : padding.amounts()[d];
      padded[d] = detail::checked_add(op, size[a], detail::checked_mul(op, 2, before[a], "padding"), "padded input size");
      dilated[d] = effective;
      out[a] = padded[d] >= effective ? (padded[d] - effective) / step[a] + 1 : 0;
    }
  }
  if (!padding.is_same()) {
    bool fits = true;
    for (size_t d = 0; d < D; ++d) fits = fits && padded[d] >= dilated[d];
    XG_CHECK(fits, "{}: the padded input size ({}) is smaller than the dilated kernel size ({}) for input of shape {}", op,
             join_sizes(padded), join_sizes(dilated), shape_string(xs));
  }

  PatchGeometry g;
  g.batch = batch;
  g.channels = channels;
  g.height = size[0];
  g.width = size[1];
  g.kernel_h = kernel[0];
  g.kernel_w = kernel[1];
  g.stride_h = step[0];
  g.stride_w = step[1];
  g.pad_top = before[0];
  g.pad_left = before[1];
  g.dilation_h = spread[0];
  g.dilation_w = spread[1];
  g.out_h = out[0];
  g.out_w = out[1];
  g.batch_in_columns = true;
  g.image_shape = xs;
  const int64_t positions = detail::checked_mul(op, out[0], out[1], "number of output positions");
  const int64_t group_rows = group_channels * kernel[0] * kernel[1];  // sizes of the weight: cannot overflow
  g.columns_shape = {groups, group_rows, detail::checked_mul(op, batch, positions, "number of output positions")};

  OutputLayout layout;
  layout.batch = batch;
  layout.channels = out_channels;
  layout.positions = positions;
  layout.channel_dim = batched ? 1 : 0;
  layout.columns_shape = {groups, out_channels / groups, batch * positions};
  if (batched) layout.output_shape.push_back(batch);
  layout.output_shape.push_back(out_channels);
  for (size_t d = 0; d < D; ++d) layout.output_shape.push_back(out[2 - D + d]);

  Tensor columns = unfold_patches(input, g);                                         // [G, C/G*kH*kW, N*L]
  Tensor kernels = reshape(weight, {groups, out_channels / groups, group_rows});      // [G, out/G, C/G*kH*kW]
  Tensor products = gemm(kernels, columns, false, false);                            // [G, out/G, N*L]
  return columns_to_output(products, bias, layout);
}

void check_window_args(const char* op, const ExpandingArray<2>& kernel_size, const ExpandingArray<2>& dilation,
                       const ExpandingArray<2>& padding, const ExpandingArray<2>& stride) {
  for (size_t d = 0; d < 2; ++d) {
    XG_CHECK(kernel_size[d] > 0, "{}: kernel_size must be positive, got {}", op, kernel_size.tuple_string());
    XG_CHECK(dilation[d] > 0, "{}: dilation must be positive, got {}", op, dilation.tuple_string());
    XG_CHECK(padding[d] >= 0, "{}: padding must be non-negative, got {}", op, padding.tuple_string());
    XG_CHECK(stride[d] > 0, "{}: stride must be positive, got {}", op, stride.tuple_string());
  }
}

/// Unfold geometry for an image of `height` x `width`; out sizes may come out < 1 (checked by callers).
PatchGeometry window_geometry(const char* op, int64_t height, int64_t width, const ExpandingArray<2>& kernel_size,
                              const ExpandingArray<2>& dilation, const ExpandingArray<2>& padding, const ExpandingArray<2>& stride) {
  PatchGeometry g;
  g.height = height;
  g.width = width;
  g.kernel_h = kernel_size[0];
  g.kernel_w = kernel_size[1];
  g.dilation_h = dilation[0];
  g.dilation_w = dilation[1];
  g.pad_top = padding[0];
  g.pad_left = padding[1];
  g.stride_h = stride[0];
  g.stride_w = stride[1];
  auto count = [op](int64_t in, int64_t k, int64_t d, int64_t p, int64_t s) {
    const int64_t padded = detail::checked_add(op, in, detail::checked_mul(op, 2, p, "padding"), "padded input size");
    const int64_t span = padded - detail::checked_mul(op, d, k - 1, "dilated kernel size") - 1;
    return span >= 0 ? span / s + 1 : 0;
  };
  g.out_h = count(height, g.kernel_h, g.dilation_h, g.pad_top, g.stride_h);
  g.out_w = count(width, g.kernel_w, g.dilation_w, g.pad_left, g.stride_w);
  // positions(), the kernel area and their product (the work per plane) are used unchecked below.
  const int64_t positions = detail::checked_mul(op, std::max<int64_t>(g.out_h, 0), std::max<int64_t>(g.out_w, 0), "number of output positions");
  detail::checked_mul(op, detail::checked_mul(op, g.kernel_h, g.kernel_w, "kernel area"), positions, "kernel area x output positions");
  return g;
}

const char* padding_mode_error(const std::string& mode) {
  if (mode == "zeros") return nullptr;
  if (mode == "reflect" || mode == "replicate" || mode == "circular") return "unsupported";
  return "unknown";
}

}  // namespace

// ---- functional ------------------------------------------------------------------------------------
namespace functional {

Tensor conv1d(const Tensor& input, const Tensor& weight, const Tensor& bias, ExpandingArray<1> stride, const ConvPadding<1>& padding,
              ExpandingArray<1> dilation, int64_t groups) {
  return autograd::anomaly_checked_as("conv1d", [&] { return convolution<1>("conv1d", input, weight, bias, stride, padding, dilation, groups); });
}

Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias, ExpandingArray<2> stride, const ConvPadding<2>& padding,
              ExpandingArray<2> dilation, int64_t groups) {
  return autograd::anomaly_checked_as("conv2d", [&] { return convolution<2>("conv2d", input, weight, bias, stride, padding, dilation, groups); });
}

Tensor im2col(const Tensor& input, ExpandingArray<2> kernel_size, ExpandingArray<2> dilation, ExpandingArray<2> padding,
              ExpandingArray<2> stride) {
  XG_CHECK(input.defined(), "im2col: the input tensor is undefined");
  XG_CHECK(input.is_floating_point(), "im2col: expected a float32 or float64 input, got {}", input.dtype());
  XG_CHECK(input.dim() == 3 || input.dim() == 4, "im2col: expected a 3-D (unbatched) or 4-D (batched) input, got shape {}",
           shape_string(input.shape()));
  check_window_args("im2col", kernel_size, dilation, padding, stride);
  const Shape xs = input.shape();
  const bool batched = input.dim() == 4;
  PatchGeometry g = window_geometry("im2col", xs[xs.size() - 2], xs.back(), kernel_size, dilation, padding, stride);
  XG_CHECK(g.out_h > 0 && g.out_w > 0,
           "im2col: input of shape {} is too small for kernel_size={}, dilation={}, padding={}, stride={} (sliding-window output {} x {})",
           shape_string(xs), kernel_size.tuple_string(), dilation.tuple_string(), padding.tuple_string(), stride.tuple_string(), g.out_h,
           g.out_w);
  g.batch = batched ? xs[0] : 1;
  g.channels = xs[batched ? 1 : 0];
  g.image_shape = xs;
  const int64_t rows = detail::checked_mul("im2col", g.channels, g.kernel_h * g.kernel_w, "rows (channels x kernel area)");
  g.columns_shape = batched ? Shape{g.batch, rows, g.positions()} : Shape{rows, g.positions()};
  return unfold_patches(input, g);
}

Tensor col2im(const Tensor& columns, ExpandingArray<2> output_size, ExpandingArray<2> kernel_size, ExpandingArray<2> dilation,
              ExpandingArray<2> padding, ExpandingArray<2> stride) {
  XG_CHECK(columns.defined(), "col2im: the input tensor is undefined");
  XG_CHECK(columns.is_floating_point(), "col2im: expected a float32 or float64 input, got {}", columns.dtype());
  XG_CHECK(columns.dim() == 2 || columns.dim() == 3, "col2im: expected a 2-D (unbatched) or 3-D (batched) input, got shape {}",
           shape_string(columns.shape()));
  check_window_args("col2im", kernel_size, dilation, padding, stride);
  XG_CHECK(output_size[0] > 0 && output_size[1] > 0, "col2im: output_size must be positive, got {}", output_size.tuple_string());
  const Shape cs = columns.shape();
  const bool batched = columns.dim() == 3;
  const int64_t rows = cs[cs.size() - 2], area = detail::checked_mul("col2im", kernel_size[0], kernel_size[1], "kernel area");
  XG_CHECK(rows % area == 0, "col2im: expected the rows of the input (shape {}) to be divisible by the kernel area {} (kernel_size={})",
           shape_string(cs), area, kernel_size.tuple_string());
  PatchGeometry g = window_geometry("col2im", output_size[0], output_size[1], kernel_size, dilation, padding, stride);
  XG_CHECK(g.out_h > 0 && g.out_w > 0 && cs.back() == g.positions(),
           "col2im: given output_size={}, kernel_size={}, dilation={}, padding={}, stride={}, expected {} sliding-window positions "
           "({} x {}) in the last dimension of the input, got shape {}",
           output_size.tuple_string(), kernel_size.tuple_string(), dilation.tuple_string(), padding.tuple_string(), stride.tuple_string(),
           std::max<int64_t>(g.out_h, 0) * std::max<int64_t>(g.out_w, 0), g.out_h, g.out_w, shape_string(cs));
  g.batch = batched ? cs[0] : 1;
  g.channels = rows / area;
  g.columns_shape = cs;
  g.image_shape = batched ? Shape{g.batch, g.channels, output_size[0], output_size[1]} : Shape{g.channels, output_size[0], output_size[1]};
  return fold_patches(columns, g);
}

}  // namespace functional

// ---- modules -----------------------------------------------------------------------------------------
template <size_t D>
ConvNdImpl<D>::ConvNdImpl(const ConvOptions<D>& options_) : Module(D == 1 ? "Conv1d" : "Conv2d"), options(options_) {
  const char* layer = D == 1 ? "Conv1d" : "Conv2d";
  const int64_t in = options.in_channels(), out = options.out_channels(), groups = options.groups();
  XG_CHECK(in > 0 && out > 0, "{}: in_channels and out_channels must be positive, got {} and {}", layer, in, out);
  XG_CHECK(groups > 0, "{}: groups must be a positive integer, got {}", layer, groups);
  XG_CHECK(in % groups == 0, "{}: in_channels ({}) must be divisible by groups ({})", layer, in, groups);
  XG_CHECK(out % groups == 0, "{}: out_channels ({}) must be divisible by groups ({})", layer, out, groups);
  for (size_t d = 0; d < D; ++d) {
    XG_CHECK(options.kernel_size()[d] > 0, "{}: kernel_size must be positive, got {}", layer, options.kernel_size().tuple_string());
    XG_CHECK(options.stride()[d] > 0, "{}: stride must be positive, got {}", layer, options.stride().tuple_string());
    XG_CHECK(options.dilation()[d] > 0, "{}: dilation must be positive, got {}", layer, options.dilation().tuple_string());
    XG_CHECK(options.padding().amounts()[d] >= 0, "{}: padding must be non-negative, got {}", layer,
             options.padding().amounts().tuple_string());
    XG_CHECK(!options.padding().is_same() || options.stride()[d] == 1,
             "{}: padding='same' is not supported for strided convolutions (stride={})", layer, options.stride().tuple_string());
  }
  const char* mode_error = padding_mode_error(options.padding_mode());
  XG_CHECK(mode_error == nullptr || std::string(mode_error) != "unknown",
           "{}: padding_mode must be one of 'zeros', 'reflect', 'replicate' or 'circular', got '{}'", layer, options.padding_mode());
  XG_CHECK(mode_error == nullptr, "{}: padding_mode '{}' is unsupported (only 'zeros' is implemented)", layer, options.padding_mode());

  Shape weight_shape{out, in / groups};
  for (size_t d = 0; d < D; ++d) weight_shape.push_back(options.kernel_size()[d]);
  weight = register_parameter("weight", xg::empty(weight_shape));
  if (options.bias()) bias = register_parameter("bias", empty({out}));
  reset_parameters();
}

template <size_t D>
void ConvNdImpl<D>::reset_parameters() {
  init::kaiming_uniform_(weight, std::sqrt(5.0));  // = U(-1/sqrt(fan_in), 1/sqrt(fan_in))
  if (bias.defined()) {
    const int64_t fan_in = init::_calculate_fan_in_and_fan_out(weight).first;
    const double bound = fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0;
    init::uniform_(bias, -bound, bound);
  }
}

template <size_t D>
Tensor ConvNdImpl<D>::forward(const Tensor& input) {
  const char* layer = D == 1 ? "Conv1d" : "Conv2d";
  XG_CHECK(input.defined(), "{}: the input tensor is undefined", layer);
  XG_CHECK(input.dtype() == weight.dtype(), "{}: expected a {} input (the dtype of the parameters), got {}", layer, weight.dtype(),
           input.dtype());
  return convolution<D>(layer, input, weight, bias, options.stride(), options.padding(), options.dilation(), options.groups());
}

template <size_t D>
std::string ConvNdImpl<D>::extra_repr() const {
  // PyTorch's _ConvNd.extra_repr: padding, dilation, groups, bias and padding_mode only when not default.
  std::string s = fmt::format("{}, {}, kernel_size={}, stride={}", options.in_channels(), options.out_channels(),
                              options.kernel_size().tuple_string(), options.stride().tuple_string());
  const ConvPadding<D>& padding = options.padding();
  if (!padding.mode().empty()) s += ", padding=" + padding.mode();
  else if (padding.amounts() != ExpandingArray<D>(0)) s += ", padding=" + padding.amounts().tuple_string();
  if (options.dilation() != ExpandingArray<D>(1)) s += ", dilation=" + options.dilation().tuple_string();
  if (options.groups() != 1) s += fmt::format(", groups={}", options.groups());
  if (!options.bias()) s += ", bias=false";  // as libtorch prints it (std::boolalpha), like Linear's bias=true
  if (options.padding_mode() != "zeros") s += ", padding_mode=" + options.padding_mode();
  return s;
}

template class ConvNdImpl<1>;
template class ConvNdImpl<2>;

}  // namespace xg::nn
