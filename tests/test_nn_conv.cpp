// Conv1d / Conv2d and the im2col / col2im primitives: forward values against a naive direct
// convolution (and naive unfold/fold loops) written here, float64 gradcheck with respect to input,
// weight and bias, gradgradcheck, output shapes, PyTorch's init bounds and printing, errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "xgrad/autograd/allocator.hpp"
#include "xgrad/autograd/gradcheck.hpp"
#include "xgrad/autograd/ops.hpp"
#include "xgrad/autograd/parallel.hpp"
#include "xgrad/nn/conv.hpp"

using namespace xg;
namespace F = xg::nn::functional;
using Catch::Matchers::Contains;
using xg::nn::ExpandingArray;

namespace {

/// One 2-D convolution configuration for the naive reference (padding before/after given apart,
/// so "same" with an even kernel is covered).
struct Config {
  int64_t kernel_h, kernel_w, stride_h = 1, stride_w = 1, pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  int64_t dilation_h = 1, dilation_w = 1, groups = 1;
};

/// Direct convolution: out[n, o, y, x] = b[o] + sum_{c in o's group, i, j} w[o, c, i, j] * in[n, g*Cg + c, y*s - p + i*d, ...].
std::vector<double> naive_conv(const std::vector<double>& input, const Shape& xs, const std::vector<double>& weight, const Shape& ws,
                               const std::vector<double>& bias, const Config& c, Shape& out_shape) {
  const int64_t N = xs[0], C = xs[1], H = xs[2], W = xs[3], O = ws[0], Cg = ws[1];
  const int64_t OH = (H + c.pad_top + c.pad_bottom - c.dilation_h * (c.kernel_h - 1) - 1) / c.stride_h + 1;
  const int64_t OW = (W + c.pad_left + c.pad_right - c.dilation_w * (c.kernel_w - 1) - 1) / c.stride_w + 1;
  const int64_t Og = O / c.groups;
  out_shape = {N, O, OH, OW};
  std::vector<double> out(static_cast<size_t>(N * O * OH * OW), 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t y = 0; y < OH; ++y)
        for (int64_t x = 0; x < OW; ++x) {
          double acc = bias.empty() ? 0.0 : bias[o];
          const int64_t g = o / Og;
          for (int64_t cc = 0; cc < Cg; ++cc)
            for (int64_t i = 0; i < c.kernel_h; ++i)
              for (int64_t j = 0; j < c.kernel_w; ++j) {
                const int64_t ih = y * c.stride_h - c.pad_top + i * c.dilation_h;
                const int64_t iw = x * c.stride_w - c.pad_left + j * c.dilation_w;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                acc += weight[((o * Cg + cc) * c.kernel_h + i) * c.kernel_w + j] * input[((n * C + g * Cg + cc) * H + ih) * W + iw];
              }
          out[((n * O + o) * OH + y) * OW + x] = acc;
        }
  (void)C;
  return out;
}

std::vector<double> values_of(const Tensor& t) {
  Tensor d = t.to(kFloat64);
  return std::vector<double>(d.data_ptr<double>(), d.data_ptr<double>() + d.numel());
}

void check_close(const Tensor& actual, const std::vector<double>& expected, double tolerance = 1e-10) {
  std::vector<double> got = values_of(actual);
  REQUIRE(got.size() == expected.size());
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::abs(got[i] - expected[i]));
  CHECK(worst <= tolerance);
}

TensorList conv_inputs(const Shape& xs, const Shape& ws, bool with_bias) {
  Tensor x = randn(xs, kFloat64).requires_grad_();
  Tensor w = randn(ws, kFloat64).requires_grad_();
  Tensor b = with_bias ? randn({ws[0]}, kFloat64).requires_grad_() : Tensor();
  return {x, w, b};
}

}  // namespace

TEST_CASE("conv2d matches a direct convolution for strides, padding, dilation, groups and asymmetric kernels", "[nn][conv]") {
  manual_seed(11);
  struct Case {
    const char* name;
    Shape xs, ws;
    Config config;
    ExpandingArray<2> stride, dilation;
    nn::ConvPadding<2> padding;
    bool bias;
  };
  std::vector<Case> cases{
      {"plain 3x3", {2, 3, 6, 7}, {4, 3, 3, 3}, {3, 3}, 1, 1, 0, true},
      {"stride 2, padding 1", {2, 3, 7, 6}, {5, 3, 3, 3}, {3, 3, 2, 2, 1, 1, 1, 1}, 2, 1, 1, true},
      {"dilation 2, padding 2", {1, 2, 8, 9}, {3, 2, 3, 3}, {3, 3, 1, 1, 2, 2, 2, 2, 2, 2}, 1, 2, 2, false},
      {"groups 2", {2, 4, 5, 5}, {6, 2, 3, 3}, {3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2}, 1, 1, 1, true},
      {"asymmetric kernel, stride and padding", {2, 2, 7, 8}, {3, 2, 3, 2}, {3, 2, 2, 1, 1, 0, 1, 0}, ExpandingArray<2>{2, 1}, 1,
       nn::ConvPadding<2>{1, 0}, true},
      // "same" with an even kernel: total padding 3 -> 1 before, 2 after (PyTorch puts the extra after).
      {"same, 4x4 kernel", {1, 2, 6, 5}, {3, 2, 4, 4}, {4, 4, 1, 1, 1, 1, 2, 2}, 1, 1, "same", true},
      {"same, dilation 2", {2, 2, 5, 6}, {2, 2, 3, 2}, {3, 2, 1, 1, 2, 1, 2, 1, 2, 2}, 1, 2, "same", true},
      {"valid", {1, 1, 5, 5}, {2, 1, 2, 3}, {2, 3}, 1, 1, "valid", true},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    TensorList in = conv_inputs(c.xs, c.ws, c.bias);
    Shape expected_shape;
    std::vector<double> expected =
        naive_conv(values_of(in[0]), c.xs, values_of(in[1]), c.ws, c.bias ? values_of(in[2]) : std::vector<double>{}, c.config, expected_shape);
    Tensor y = F::conv2d(in[0], in[1], in[2], c.stride, c.padding, c.dilation, c.config.groups);
    CHECK(y.shape() == expected_shape);
    check_close(y, expected);
    const Shape ys = y.shape();
    if (c.padding.is_same()) CHECK(Shape(ys.begin() + 2, ys.end()) == Shape(c.xs.begin() + 2, c.xs.end()));
    // The unbatched form is the batched one without the batch dimension.
    Tensor one = F::conv2d(in[0].detach().narrow(0, 0, 1).squeeze(0), in[1].detach(), in[2].defined() ? in[2].detach() : Tensor(),
                           c.stride, c.padding, c.dilation, c.config.groups);
    Shape single(expected_shape.begin() + 1, expected_shape.end());
    CHECK(one.shape() == single);
    check_close(one, std::vector<double>(expected.begin(), expected.begin() + one.numel()));
  }
}

TEST_CASE("conv2d in float32 agrees with the float64 reference", "[nn][conv]") {
  manual_seed(12);
  Tensor x = randn({2, 3, 9, 9}), w = randn({4, 3, 3, 3}), b = randn({4});
  Shape out_shape;
  std::vector<double> expected = naive_conv(values_of(x), x.shape(), values_of(w), w.shape(), values_of(b), {3, 3, 2, 2, 1, 1, 1, 1}, out_shape);
  Tensor y = F::conv2d(x, w, b, 2, 1);
  CHECK(y.dtype() == kFloat32);
  CHECK(y.shape() == out_shape);
  check_close(y, expected, 1e-4);
}

TEST_CASE("conv1d matches a direct convolution (batched and unbatched)", "[nn][conv]") {
  manual_seed(13);
  Tensor x = randn({2, 4, 11}, kFloat64), w = randn({6, 2, 3}, kFloat64), b = randn({6}, kFloat64);
  Shape shape4;
  // conv1d is conv2d over a height of 1: reuse the reference with a 1 x k kernel.
  std::vector<double> expected = naive_conv(values_of(x), {2, 4, 1, 11}, values_of(w), {6, 2, 1, 3}, values_of(b),
                                            {1, 3, 1, 2, 0, 2, 0, 2, 1, 2, 2}, shape4);
  Tensor y = F::conv1d(x, w, b, 2, 2, 2, 2);
  CHECK(y.shape() == Shape{2, 6, shape4[3]});
  check_close(y, expected);
  Tensor same = F::conv1d(x, w, b, 1, "same", 1, 2);
  CHECK(same.shape() == Shape{2, 6, 11});
  std::vector<double> expected_same =
      naive_conv(values_of(x), {2, 4, 1, 11}, values_of(w), {6, 2, 1, 3}, values_of(b), {1, 3, 1, 1, 0, 1, 0, 1, 1, 1, 2}, shape4);
  check_close(same, expected_same);
  Tensor unbatched = F::conv1d(x.narrow(0, 1, 1).squeeze(0), w, b, 1, "same", 1, 2);
  CHECK(unbatched.shape() == Shape{6, 11});
  check_close(unbatched, std::vector<double>(expected_same.begin() + 6 * 11, expected_same.end()));
}

TEST_CASE("conv2d gradcheck with respect to input, weight and bias", "[nn][conv]") {
  manual_seed(14);
  struct Case {
    Shape xs, ws;
    ExpandingArray<2> stride, dilation;
    nn::ConvPadding<2> padding;
    int64_t groups;
  };
  std::vector<Case> cases{
      {{2, 2, 5, 5}, {3, 2, 3, 3}, 2, 1, 1, 1},
      {{1, 4, 6, 5}, {4, 2, 2, 3}, ExpandingArray<2>{1, 2}, 2, nn::ConvPadding<2>{2, 1}, 2},
      {{1, 2, 4, 5}, {2, 2, 2, 2}, 1, 1, "same", 1},
  };
  for (const Case& c : cases) {
    TensorList in = conv_inputs(c.xs, c.ws, true);
    auto f = [&](const TensorList& t) { return F::conv2d(t[0], t[1], t[2], c.stride, c.padding, c.dilation, c.groups); };
    CHECK(autograd::gradcheck(std::function<Tensor(const TensorList&)>(f), in));
  }
  // Unbatched input and no bias.
  TensorList in = conv_inputs({2, 4, 4}, {3, 2, 2, 2}, false);
  auto f = [](const TensorList& t) { return F::conv2d(t[0], t[1], {}, 1, 1); };
  CHECK(autograd::gradcheck(std::function<Tensor(const TensorList&)>(f), {in[0], in[1]}));
}

TEST_CASE("conv1d gradcheck with stride, padding, dilation and groups", "[nn][conv]") {
  manual_seed(15);
  TensorList in = conv_inputs({2, 4, 9}, {4, 2, 3}, true);
  auto f = [](const TensorList& t) { return F::conv1d(t[0], t[1], t[2], 2, 1, 2, 2); };
  CHECK(autograd::gradcheck(std::function<Tensor(const TensorList&)>(f), in));
}

TEST_CASE("conv2d gradgradcheck (second derivatives through im2col, GEMM and col2im)", "[nn][conv]") {
  manual_seed(16);
  TensorList in = conv_inputs({1, 2, 4, 4}, {2, 1, 2, 2}, true);
  auto f = [](const TensorList& t) { return F::conv2d(t[0], t[1], t[2], 2, 1, 1, 2); };
  CHECK(autograd::gradgradcheck(std::function<Tensor(const TensorList&)>(f), in));
}

TEST_CASE("im2col and col2im match naive unfold/fold loops, are adjoint, and pass gradcheck/gradgradcheck", "[nn][conv]") {
  manual_seed(17);
  const int64_t N = 2, C = 2, H = 5, W = 6, kh = 2, kw = 3, dh = 2, dw = 1, ph = 1, pw = 2, sh = 2, sw = 3;
  const int64_t OH = (H + 2 * ph - dh * (kh - 1) - 1) / sh + 1, OW = (W + 2 * pw - dw * (kw - 1) - 1) / sw + 1, L = OH * OW;
  Tensor x = randn({N, C, H, W}, kFloat64);
  std::vector<double> xv = values_of(x), unfolded(static_cast<size_t>(N * C * kh * kw * L), 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < kh; ++i)
        for (int64_t j = 0; j < kw; ++j)
          for (int64_t y = 0; y < OH; ++y)
            for (int64_t z = 0; z < OW; ++z) {
              const int64_t ih = y * sh - ph + i * dh, iw = z * sw - pw + j * dw;
              const int64_t row = (c * kh + i) * kw + j;
              if (ih >= 0 && ih < H && iw >= 0 && iw < W) unfolded[(n * C * kh * kw + row) * L + y * OW + z] = xv[((n * C + c) * H + ih) * W + iw];
            }
  Tensor cols = F::im2col(x, {kh, kw}, {dh, dw}, {ph, pw}, {sh, sw});
  CHECK(cols.shape() == Shape{N, C * kh * kw, L});
  check_close(cols, unfolded);
  CHECK(F::im2col(x.narrow(0, 0, 1).squeeze(0), {kh, kw}, {dh, dw}, {ph, pw}, {sh, sw}).shape() == Shape{C * kh * kw, L});

  // fold sums every column entry back onto the pixel it came from.
  Tensor y = randn({N, C * kh * kw, L}, kFloat64);
  std::vector<double> yv = values_of(y), folded(static_cast<size_t>(N * C * H * W), 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < kh; ++i)
        for (int64_t j = 0; j < kw; ++j)
          for (int64_t r = 0; r < OH; ++r)
            for (int64_t z = 0; z < OW; ++z) {
              const int64_t ih = r * sh - ph + i * dh, iw = z * sw - pw + j * dw;
              if (ih >= 0 && ih < H && iw >= 0 && iw < W)
                folded[((n * C + c) * H + ih) * W + iw] += yv[(n * C * kh * kw + (c * kh + i) * kw + j) * L + r * OW + z];
            }
  Tensor image = F::col2im(y, {H, W}, {kh, kw}, {dh, dw}, {ph, pw}, {sh, sw});
  CHECK(image.shape() == Shape{N, C, H, W});
  check_close(image, folded);
  // <col2im(y), x> == <y, im2col(x)>
  CHECK(sum(mul(image, x)).item<double>() == Approx(sum(mul(y, cols)).item<double>()).epsilon(1e-12));

  Tensor xs = randn({1, 2, 4, 5}, kFloat64).requires_grad_();
  auto unfold = [](const TensorList& t) { return F::im2col(t[0], {2, 2}, {1, 2}, {1, 0}, {1, 2}); };
  CHECK(autograd::gradcheck(std::function<Tensor(const TensorList&)>(unfold), {xs}));
  CHECK(autograd::gradgradcheck(std::function<Tensor(const TensorList&)>(unfold), {xs}));
  const int64_t positions = unfold({xs}).size(2);
  Tensor ys = randn({1, 8, positions}, kFloat64).requires_grad_();
  auto fold = [](const TensorList& t) { return F::col2im(t[0], {4, 5}, {2, 2}, {1, 2}, {1, 0}, {1, 2}); };
  CHECK(autograd::gradcheck(std::function<Tensor(const TensorList&)>(fold), {ys}));
  CHECK(autograd::gradgradcheck(std::function<Tensor(const TensorList&)>(fold), {ys}));
}

TEST_CASE("Conv2d and Conv1d modules: parameters, PyTorch init bounds, shapes, printing", "[nn][conv]") {
  manual_seed(18);
  nn::Conv2d conv(nn::Conv2dOptions(1, 32, 5).padding(2));
  CHECK(conv->named_parameters().keys() == std::vector<std::string>{"weight", "bias"});
  CHECK(conv->weight.shape() == Shape{32, 1, 5, 5});
  CHECK(conv->bias.shape() == Shape{32});
  // kaiming_uniform_(a = sqrt(5)) and the bias: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = 1 * 5 * 5.
  const double bound = 1.0 / 5.0;
  CHECK(max(abs(conv->weight)).item<double>() <= bound);
  CHECK(max(abs(conv->weight)).item<double>() > 0.9 * bound);
  CHECK(max(abs(conv->bias)).item<double>() <= bound);
  CHECK(conv->extra_repr() == "1, 32, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2)");
  CHECK(conv->name() == "Conv2d");
  Tensor x = randn({8, 1, 28, 28});
  CHECK(conv(x).shape() == Shape{8, 32, 28, 28});
  CHECK(conv(randn({1, 28, 28})).shape() == Shape{32, 28, 28});
  check_close(conv(x), values_of(F::conv2d(x, conv->weight, conv->bias, 1, 2)), 0);

  nn::Conv2d grouped(nn::Conv2dOptions(4, 6, {3, 2}).stride({2, 1}).dilation(2).groups(2).bias(false).padding("same").stride(1));
  CHECK(grouped->weight.shape() == Shape{6, 2, 3, 2});
  CHECK_FALSE(grouped->bias.defined());
  CHECK(grouped->named_parameters().keys() == std::vector<std::string>{"weight"});
  CHECK(grouped->extra_repr() == "4, 6, kernel_size=(3, 2), stride=(1, 1), padding=same, dilation=(2, 2), groups=2, bias=false");
  CHECK(max(abs(grouped->weight)).item<double>() <= 1.0 / std::sqrt(2.0 * 3 * 2));
  CHECK(grouped(randn({2, 4, 7, 5})).shape() == Shape{2, 6, 7, 5});

  nn::Conv1d conv1(3, 5, 4);
  CHECK(conv1->weight.shape() == Shape{5, 3, 4});
  CHECK(conv1->extra_repr() == "3, 5, kernel_size=(4,), stride=(1,)");
  CHECK(conv1->name() == "Conv1d");
  CHECK(conv1(randn({2, 3, 10})).shape() == Shape{2, 5, 7});
  CHECK(conv1(randn({3, 10})).shape() == Shape{5, 7});
  nn::Conv1d strided(nn::Conv1dOptions(2, 2, 3).stride(2).padding(1));
  CHECK(strided->extra_repr() == "2, 2, kernel_size=(3,), stride=(2,), padding=(1,)");
  CHECK(strided(randn({1, 2, 9})).shape() == Shape{1, 2, 5});
}

TEST_CASE("Conv2d module gradcheck through the layer's parameters", "[nn][conv]") {
  manual_seed(19);
  nn::Conv2d conv(nn::Conv2dOptions(2, 4, 3).stride(2).padding(1).groups(2));
  conv->to(kFloat64);
  Tensor x = randn({2, 2, 5, 4}, kFloat64).requires_grad_();
  auto f = [&](const TensorList& t) { return conv(t[0]); };
  CHECK(autograd::gradcheck(std::function<Tensor(const TensorList&)>(f), {x, conv->weight, conv->bias}));
}

TEST_CASE("conv errors name the layer, the expectation and the shapes", "[nn][conv]") {
  nn::Conv2d conv(nn::Conv2dOptions(32, 64, 3));
  CHECK_THROWS_WITH(conv(randn({64, 16, 14, 14})), Contains("Conv2d: expected input with 32 channels, got shape [64, 16, 14, 14]"));
  CHECK_THROWS_WITH(conv(randn({32, 14})), Contains("Conv2d") && Contains("3-D (unbatched) or 4-D (batched)") && Contains("[32, 14]"));
  CHECK_THROWS_WITH(conv(randn({1, 32, 2, 2})), Contains("Conv2d") && Contains("(2 x 2)") && Contains("(3 x 3)"));
  CHECK_THROWS_WITH(conv(randn({1, 32, 5, 5}, kFloat64)), Contains("Conv2d") && Contains("float64"));
  CHECK_THROWS_WITH(nn::Conv2d(nn::Conv2dOptions(3, 4, 3).groups(2)), Contains("Conv2d: in_channels (3) must be divisible by groups (2)"));
  CHECK_THROWS_WITH(nn::Conv2d(nn::Conv2dOptions(4, 3, 3).groups(2)), Contains("Conv2d: out_channels (3) must be divisible by groups (2)"));
  CHECK_THROWS_WITH(nn::Conv2d(nn::Conv2dOptions(4, 4, 3).padding_mode("reflect")), Contains("Conv2d") && Contains("'reflect'") && Contains("unsupported"));
  CHECK_THROWS_WITH(nn::Conv2d(nn::Conv2dOptions(4, 4, 3).padding_mode("mirror")), Contains("padding_mode must be one of"));
  CHECK_THROWS_WITH(nn::Conv1d(nn::Conv1dOptions(4, 4, 3).padding("same").stride(2)), Contains("Conv1d") && Contains("strided"));
  CHECK_THROWS_WITH(nn::Conv2d(nn::Conv2dOptions(4, 4, 3).padding("full")), Contains("\"same\" or \"valid\"") && Contains("full"));
  CHECK_THROWS_WITH(nn::Conv2d(nn::Conv2dOptions(4, 4, 0)), Contains("Conv2d: kernel_size must be positive"));

  Tensor x = randn({2, 4, 6, 6}), w = randn({6, 2, 3, 3});
  CHECK_THROWS_WITH(F::conv2d(x, w, {}, 1, 0, 1, 3), Contains("conv2d") && Contains("expected input with 6 channels") && Contains("groups=3"));
  CHECK_THROWS_WITH(F::conv2d(x, w, randn({5}), 1, 0, 1, 2), Contains("conv2d: expected a bias of shape [6], got [5]"));
  CHECK_THROWS_WITH(F::conv2d(x, randn({6, 2, 3}), {}, 1, 0, 1, 2), Contains("conv2d: expected a 4-D weight") && Contains("[6, 2, 3]"));
  CHECK_THROWS_WITH(F::conv2d(x, w, {}, 2, "same", 1, 2), Contains("conv2d: padding='same' is not supported for strided convolutions"));
  CHECK_THROWS_WITH(F::conv1d(randn({3, 4}), randn({3, 2, 1})), Contains("conv1d: expected input with 2 channels, got shape [3, 4]"));
  CHECK_THROWS_WITH(F::im2col(randn({4, 4}), 2), Contains("im2col") && Contains("[4, 4]"));
  CHECK_THROWS_WITH(F::col2im(randn({1, 6, 9}), {4, 4}, 2), Contains("col2im") && Contains("kernel area 4"));
  CHECK_THROWS_WITH(F::col2im(randn({1, 8, 8}), {4, 4}, 2), Contains("col2im") && Contains("9 sliding-window positions") && Contains("[1, 8, 8]"));
}

TEST_CASE("repeated conv forward/backward reuses cached buffers", "[nn][conv]") {
  manual_seed(20);
  nn::Conv2d conv(nn::Conv2dOptions(3, 8, 3).padding(1));
  Tensor x = randn({4, 3, 12, 12}).requires_grad_();
  auto step = [&] {
    conv->zero_grad();
    x.set_grad({});
    conv(x).sum().backward();
  };
  for (int i = 0; i < 3; ++i) step();
  const size_t before = allocator_stats().system_allocations;
  for (int i = 0; i < 5; ++i) step();
  CHECK(allocator_stats().system_allocations == before);
}

TEST_CASE("conv2d split over threads matches direct loops, forward and backward", "[nn][conv][parallel]") {
  // Sizes at which im2col/col2im split their planes, the forward GEMM its columns, the weight
  // gradient its inner dimension (k slices), and the output move its images.
  const int saved = get_num_threads();
  set_num_threads(2);
  manual_seed(27);
  const int64_t N = 16, C = 4, H = 20, W = 20, O = 12, K = 3;
  TensorList in = conv_inputs({N, C, H, W}, {O, C, K, K}, true);
  Shape out_shape;
  const std::vector<double> xv = values_of(in[0]), wv = values_of(in[1]);
  const std::vector<double> expected = naive_conv(xv, in[0].shape(), wv, in[1].shape(), values_of(in[2]), {K, K, 1, 1, 1, 1, 1, 1}, out_shape);
  Tensor y = F::conv2d(in[0], in[1], in[2], 1, 1);
  REQUIRE(y.shape() == out_shape);
  check_close(y, expected);
  Tensor g = randn(out_shape, kFloat64);
  sum(mul(y, g)).backward();
  // d/dx and d/dw of sum(conv(x, w) * g), by the same direct loops.
  const std::vector<double> gv = values_of(g);
  std::vector<double> gx(xv.size(), 0.0), gw(wv.size(), 0.0), gb(size_t(O), 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t y0 = 0; y0 < H; ++y0)
        for (int64_t x0 = 0; x0 < W; ++x0) {
          const double go = gv[size_t(((n * O + o) * H + y0) * W + x0)];
          gb[size_t(o)] += go;
          for (int64_t c = 0; c < C; ++c)
            for (int64_t i = 0; i < K; ++i)
              for (int64_t j = 0; j < K; ++j) {
                const int64_t ih = y0 - 1 + i, iw = x0 - 1 + j;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                const size_t xi = size_t(((n * C + c) * H + ih) * W + iw), wi = size_t(((o * C + c) * K + i) * K + j);
                gx[xi] += go * wv[wi];
                gw[wi] += go * xv[xi];
              }
        }
  check_close(in[0].grad(), gx, 1e-9);
  check_close(in[1].grad(), gw, 1e-9);
  check_close(in[2].grad(), gb, 1e-9);
  // float64 gradcheck with respect to the weight, at the same threaded sizes (of a scalar: one
  // backward pass for the analytic side instead of one per output element).
  Tensor x = in[0].detach(), w = in[1].detach().requires_grad_();
  auto f = [x, g](const TensorList& t) { return sum(mul(F::conv2d(x, t[0], Tensor(), 1, 1), g)); };
  CHECK(autograd::gradcheck(std::function<Tensor(const TensorList&)>(f), {w}));
  set_num_threads(saved);
}
