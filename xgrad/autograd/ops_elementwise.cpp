// Elementwise ops: binary (broadcasting), scalar, unary, comparisons, where, dtype conversion, and
// the in-place methods with PyTorch's version-counter safety.
#include <cmath>
#include <functional>
#include <limits>

#include <xtensor/xadapt.hpp>
#include <xtensor/xmath.hpp>
#include <xtensor/xnoalias.hpp>

#include "xgrad/autograd/kernels.hpp"
#include "xgrad/autograd/parallel.hpp"

namespace xg {

using autograd::BackwardContext;
using autograd::record;
using autograd::should_record;
using detail::dispatch;
using detail::dispatch_floating;

namespace {

/// out = f(a, b) over the broadcast shape, for any dtype f accepts.
template <class F>
Tensor binary_map(const char* op, const Tensor& a_in, const Tensor& b_in, F f) {
  detail::check_same_dtype(op, a_in, b_in);
  // A view is copied once into a contiguous operand, so that its result takes the same loop, hence the
  // same bits, as the contiguous operand would (GCC may contract x + a*y into an FMA in one loop shape
  // and not in another). References otherwise: no reference-count traffic per op.
  Tensor a_copy, b_copy;
  const Tensor& a = a_in.is_contiguous() ? a_in : (a_copy = detail::dense(a_in));
  const Tensor& b = b_in.is_contiguous() ? b_in : (b_copy = detail::dense(b_in));
  // Same shapes (the common case): one flat loop, no shape vectors or broadcast set-up.
  if (a.impl()->sizes == b.impl()->sizes) {
    return dispatch(a.dtype(), [&](auto tag) {
      using T = decltype(tag);
      Tensor out = detail::empty_tensor<T>(a.impl()->sizes);
      const T* px = a.contiguous_data<T>();
      const T* py = b.contiguous_data<T>();
      T* po = out.contiguous_data<T>();
      parallel_for(0, a.numel(), kElementwiseGrain, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) po[i] = static_cast<T>(f(px[i], py[i]));
      });
      return out;
    });
  }
  const Shape sa = a.shape(), sb = b.shape();
  const Shape so = detail::broadcast_shapes(op, sa, sb);
  return dispatch(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    Array<T> out = detail::new_array<T>(so);
    detail::broadcast_loop(a.contiguous_data<T>(), sa, b.contiguous_data<T>(), sb, out.data(), so,
                           [&](T x, T y) { return static_cast<T>(f(x, y)); });
    return detail::make_tensor(std::move(out));
  });
}

template <class F>
Tensor binary_map_floating(const char* op, const Tensor& a, const Tensor& b, F f) {
  detail::check_same_dtype(op, a, b);
  XG_CHECK(a.is_floating_point(), "{}: expected floating-point tensors (float32 or float64), got {}", op, a.dtype());
  return binary_map(op, a, b, f);
}

/// out = f(x) elementwise for any dtype.
template <class F>
Tensor scalar_map(const Tensor& x_in, F f) {
  Tensor copy;
  const Tensor& x = x_in.is_contiguous() ? x_in : (copy = detail::dense(x_in));
  return dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    Tensor out = detail::empty_tensor<T>(x.impl()->sizes);
    const T* src = x.contiguous_data<T>();
    T* dst = out.contiguous_data<T>();
    parallel_for(0, x.numel(), kElementwiseGrain, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) dst[i] = static_cast<T>(f(src[i]));
    });
    return out;
  });
}

/// out = expression(x) with an xtensor expression (vectorised with xsimd), floating types only.
template <class Expr>
Tensor unary_expression(const char* op, const Tensor& x_in, Expr expression) {
  return dispatch_floating(op, x_in, [&](auto tag) {
    using T = decltype(tag);
    Tensor copy;  // xsimd over flat data: bit-identical for a view
    const Tensor& x = x_in.is_contiguous() ? x_in : (copy = detail::dense(x_in));
    Tensor out = detail::empty_tensor<T>(x.impl()->sizes);
    // The expression over flat slices of the data (one slice per thread for large tensors). One
    // instantiation serves both cases: a second one over the xarray itself made GCC stop inlining
    // xsimd's tanh into the loop (tanh [64, 1000]: 19.5 -> 26.4 us on one thread).
    const T* src = x.contiguous_data<T>();
    T* dst = out.contiguous_data<T>();
    parallel_for(0, x.numel(), kElementwiseGrain, [&](int64_t lo, int64_t hi) {
      const std::array<std::size_t, 1> extent{static_cast<std::size_t>(hi - lo)};
      auto slice_out = xt::adapt(dst + lo, extent);
      xt::noalias(slice_out) = expression(xt::adapt(src + lo, extent));
    });
    return out;
  });
}

/// 0/1 mask of the same dtype as x (a constant: never recorded).
template <class F>
Tensor mask_of(const Tensor& x, F predicate) {
  return scalar_map(x, [&](auto v) { return predicate(v) ? 1 : 0; });
}

Tensor finish(const char* op, Tensor result) {
  autograd::check_forward_anomaly(op, result);
  return result;
}

}  // namespace

namespace detail {

void check_scalar_fits(const char* op, Dtype dtype, double value) {
  if (is_floating(dtype)) return;
  // [-2^63, 2^63): the doubles an int64 can hold; NaN fails both comparisons.
  XG_CHECK(value >= -9223372036854775808.0 && value < 9223372036854775808.0,
           "{}: the scalar {} cannot be converted to an {} element without overflow", op, value, dtype);
}

void check_scalar_operand(const char* op, Dtype dtype, double value) {
  check_scalar_fits(op, dtype, value);
  XG_CHECK(is_floating(dtype) || std::trunc(value) == value,
           "{}: a non-integral scalar {} with an {} tensor needs type promotion, which xgrad does not do yet; convert "
           "with .to(xg::kFloat32)",
           op, value, dtype);
}

}  // namespace detail

// ---- binary ------------------------------------------------------------------------------------
Tensor add(const Tensor& a, const Tensor& b, double alpha) {
  detail::check_defined("add", a);
  detail::check_scalar_operand("add", a.dtype(), alpha);  // PyTorch: int tensors take no floating alpha
  Tensor out = alpha == 1.0 ? binary_map("add", a, b, [](auto x, auto y) { return x + y; })
                            : binary_map("add", a, b, [alpha](auto x, auto y) { return x + alpha * y; });
  if (should_record({&a, &b})) {
    record("AddBackward", {a, b}, out, {}, [alpha](const BackwardContext& ctx, const Tensor& gy) {
      return TensorList{ctx.needs_grad(0) ? gy : Tensor(),
                        ctx.needs_grad(1) ? (alpha == 1.0 ? gy : mul(gy, alpha)) : Tensor()};
    });
  }
  return finish("add", out);
}

Tensor sub(const Tensor& a, const Tensor& b, double alpha) {
  detail::check_defined("sub", a);
  detail::check_scalar_operand("sub", a.dtype(), alpha);
  // alpha == 1 stays in the element type (exact for int64 beyond 2^53, as add does).
  Tensor out = alpha == 1.0 ? binary_map("sub", a, b, [](auto x, auto y) { return x - y; })
                            : binary_map("sub", a, b, [alpha](auto x, auto y) { return x - alpha * y; });
  if (should_record({&a, &b})) {
    record("SubBackward", {a, b}, out, {}, [alpha](const BackwardContext& ctx, const Tensor& gy) {
      return TensorList{ctx.needs_grad(0) ? gy : Tensor(), ctx.needs_grad(1) ? mul(gy, -alpha) : Tensor()};
    });
  }
  return finish("sub", out);
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary_map("mul", a, b, [](auto x, auto y) { return x * y; });
  if (should_record({&a, &b})) {
    record("MulBackward", {a, b}, out, {a, b}, [](const BackwardContext& ctx, const Tensor& gy) {
      return TensorList{ctx.needs_grad(0) ? mul(gy, ctx.saved(1)) : Tensor(),
                        ctx.needs_grad(1) ? mul(gy, ctx.saved(0)) : Tensor()};
    });
  }
  return finish("mul", out);
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = binary_map_floating("div", a, b, [](auto x, auto y) { return x / y; });
  if (should_record({&a, &b})) {
    record("DivBackward", {a, b}, out, {a, b}, [](const BackwardContext& ctx, const Tensor& gy) {
      const Tensor& x = ctx.saved(0);
      const Tensor& y = ctx.saved(1);
      return TensorList{ctx.needs_grad(0) ? div(gy, y) : Tensor(),
                        ctx.needs_grad(1) ? neg(div(mul(gy, x), mul(y, y))) : Tensor()};
    });
  }
  return finish("div", out);
}

Tensor add(const Tensor& a, double b) {
  detail::check_defined("add", a);
  detail::check_scalar_operand("add", a.dtype(), b);
  Tensor out = scalar_map(a, [b](auto x) { return x + static_cast<decltype(x)>(b); });
  if (should_record({&a})) record("AddBackward", {a}, out, {}, [](const BackwardContext&, const Tensor& gy) { return TensorList{gy}; });
  return finish("add", out);
}

Tensor sub(const Tensor& a, double b) {
  detail::check_defined("sub", a);
  detail::check_scalar_operand("sub", a.dtype(), b);  // named as sub, not as the add it becomes
  return add(a, -b);
}

Tensor mul(const Tensor& a, double b) {
  detail::check_defined("mul", a);
  detail::check_scalar_operand("mul", a.dtype(), b);
  Tensor out = scalar_map(a, [b](auto x) { return x * static_cast<decltype(x)>(b); });
  if (should_record({&a})) {
    record("MulBackward", {a}, out, {}, [b](const BackwardContext&, const Tensor& gy) { return TensorList{mul(gy, b)}; });
  }
  return finish("mul", out);
}

Tensor div(const Tensor& a, double b) {
  dispatch_floating("div", a, [](auto) { return 0; });
  return mul(a, 1.0 / b);
}

Tensor rsub(const Tensor& a, double b) {
  detail::check_defined("rsub", a);
  detail::check_scalar_operand("rsub", a.dtype(), b);
  Tensor out = scalar_map(a, [b](auto x) { return static_cast<decltype(x)>(b) - x; });
  if (should_record({&a})) record("RsubBackward", {a}, out, {}, [](const BackwardContext&, const Tensor& gy) { return TensorList{neg(gy)}; });
  return finish("rsub", out);
}

Tensor rdiv(const Tensor& a, double b) {
  dispatch_floating("rdiv", a, [](auto) { return 0; });
  Tensor out = scalar_map(a, [b](auto x) { return static_cast<decltype(x)>(b) / x; });
  if (should_record({&a})) {
    record("RdivBackward", {a}, out, {a, out}, [](const BackwardContext& ctx, const Tensor& gy) {
      return TensorList{neg(div(mul(gy, ctx.saved(1)), ctx.saved(0)))};  // d(b/a) = -b/a^2 = -out/a
    });
  }
  return finish("rdiv", out);
}

Tensor pow(const Tensor& base, double exponent) {
  Tensor out = dispatch_floating("pow", base, [&](auto tag) {
    using T = decltype(tag);
    const T e = static_cast<T>(exponent);
    if (exponent == 2.0) return scalar_map(base, [](auto x) { return x * x; });
    if (exponent == 0.5) return unary_expression("pow", base, [](const auto& a) { return xt::sqrt(a); });
    return unary_expression("pow", base, [e](const auto& a) { return xt::pow(a, e); });
  });
  if (should_record({&base})) {
    record("PowBackward", {base}, out, {base}, [exponent](const BackwardContext& ctx, const Tensor& gy) {
      if (exponent == 0.0) return TensorList{zeros_like(gy)};
      return TensorList{mul(gy, mul(pow(ctx.saved(0), exponent - 1.0), exponent))};
    });
  }
  return finish("pow", out);
}

Tensor pow(const Tensor& base, const Tensor& exponent) {
  Tensor out = binary_map_floating("pow", base, exponent, [](auto x, auto y) { return std::pow(x, y); });
  if (should_record({&base, &exponent})) {
    record("PowBackward", {base, exponent}, out, {base, exponent, out}, [](const BackwardContext& ctx, const Tensor& gy) {
      const Tensor& x = ctx.saved(0);
      const Tensor& e = ctx.saved(1);
      Tensor grad_base, grad_exponent;
      // d(x^e)/dx = e x^(e-1), defined as 0 where e == 0 (PyTorch; 0 * 0^-1 would be NaN at x = 0).
      // Only x == 0 needs the mask (elsewhere the formula is already 0), so d/de of this stays 1/x.
      if (ctx.needs_grad(0)) {
        Tensor undefined = mul(eq(e, 0.0), eq(x, 0.0));
        grad_base = where(undefined, zeros({}, gy.dtype()), mul(gy, mul(e, pow(x, sub(e, 1.0)))));
      }
      if (ctx.needs_grad(1)) {
        // d(x^e)/de = x^e log x; PyTorch defines it as 0 where x == 0 and e >= 0 (for e < 0 it is
        // inf * -inf = -inf). The log's input is made safe there so double backward stays finite.
        Tensor defined_zero = mul(eq(x, 0.0), ge(e, 0.0));
        Tensor safe_log = log(where(defined_zero, ones({}, x.dtype()), x));
        grad_exponent = where(defined_zero, zeros({}, gy.dtype()), mul(gy, mul(ctx.saved(2), safe_log)));
      }
      return TensorList{grad_base, grad_exponent};
    });
  }
  return finish("pow", out);
}

Tensor pow(double base, const Tensor& exponent) {
  detail::check_defined("pow", exponent);
  return pow(full_like(exponent, base), exponent);
}

namespace {
/// maximum/minimum of two elements; a NaN in either propagates, as PyTorch's.
template <class T, class Better>
T extreme_of_two(T x, T y, Better better) {
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(x) || std::isnan(y)) return std::numeric_limits<T>::quiet_NaN();
  }
  return better(x, y) ? x : y;
}

/// The share of maximum's (or minimum's) gradient that goes to `self`: 1, 1/2 at a tie, 0 where the
/// other operand wins. As PyTorch's formula, a NaN in either operand loses to nothing: both get it all.
Tensor extreme_share(const Tensor& self, const Tensor& other, bool is_max) {
  Tensor loses = is_max ? lt(self, other) : gt(self, other);
  return rsub(add(loses, mul(eq(self, other), 0.5)), 1.0);
}
}  // namespace

Tensor minimum(const Tensor& a, const Tensor& b) {
  Tensor out = binary_map("minimum", a, b, [](auto x, auto y) { return extreme_of_two(x, y, std::less<>()); });
  if (should_record({&a, &b})) {
    record("MinimumBackward", {a, b}, out, {a, b}, [](const BackwardContext& ctx, const Tensor& gy) {
      return TensorList{ctx.needs_grad(0) ? mul(gy, extreme_share(ctx.saved(0), ctx.saved(1), false)) : Tensor(),
                        ctx.needs_grad(1) ? mul(gy, extreme_share(ctx.saved(1), ctx.saved(0), false)) : Tensor()};
    });
  }
  return finish("minimum", out);
}

Tensor maximum(const Tensor& a, const Tensor& b) {
  Tensor out = binary_map("maximum", a, b, [](auto x, auto y) { return extreme_of_two(x, y, std::greater<>()); });
  if (should_record({&a, &b})) {
    record("MaximumBackward", {a, b}, out, {a, b}, [](const BackwardContext& ctx, const Tensor& gy) {
      return TensorList{ctx.needs_grad(0) ? mul(gy, extreme_share(ctx.saved(0), ctx.saved(1), true)) : Tensor(),
                        ctx.needs_grad(1) ? mul(gy, extreme_share(ctx.saved(1), ctx.saved(0), true)) : Tensor()};
    });
  }
  return finish("maximum", out);
}

Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b) {
  detail::check_defined("where", condition);
  detail::check_same_dtype("where", a, b);
  const Shape so = detail::broadcast_shapes("where", detail::broadcast_shapes("where", condition.shape(), a.shape()), b.shape());
  // The condition as a 0/1 mask broadcast to the output shape.
  std::vector<uint8_t> mask(static_cast<size_t>(detail::shape_numel(so)));
  dispatch(condition.dtype(), [&](auto tag) {
    using C = decltype(tag);
    const Tensor dense = detail::dense(condition);
    const auto c = dense.array<C>();
    detail::broadcast_loop(c.data(), condition.shape(), c.data(), condition.shape(), mask.data(), so,
                           [](C v, C) { return static_cast<uint8_t>(v != C(0)); });
  });
  Tensor out = dispatch(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    Array<T> pa = detail::new_array<T>(so), pb = detail::new_array<T>(so);
    detail::broadcast_copy(detail::dense(a).contiguous_data<T>(), a.shape(), pa.data(), so);
    detail::broadcast_copy(detail::dense(b).contiguous_data<T>(), b.shape(), pb.data(), so);
    for (size_t i = 0; i < mask.size(); ++i) pa.data()[i] = mask[i] ? pa.data()[i] : pb.data()[i];
    return detail::make_tensor(std::move(pa));
  });
  if (should_record({&a, &b})) {
    Tensor cond = condition.detach();
    record("WhereBackward", {a, b}, out, {cond}, [](const BackwardContext& ctx, const Tensor& gy) {
      Tensor zero = zeros({}, gy.dtype());
      return TensorList{ctx.needs_grad(0) ? where(ctx.saved(0), gy, zero) : Tensor(),
                        ctx.needs_grad(1) ? where(ctx.saved(0), zero, gy) : Tensor()};
    });
  }
  return finish("where", out);
}

// ---- comparisons ---------------------------------------------------------------------------------
#define XG_COMPARISON(name, op)                                                                       \
  Tensor name(const Tensor& a, const Tensor& b) {                                                     \
    return binary_map(#name, a, b, [](auto x, auto y) { return (x op y) ? 1 : 0; });                  \
  }                                                                                                   \
  Tensor name(const Tensor& a, double b) {                                                            \
    detail::check_defined(#name, a);                                                                  \
    /* A float tensor compares at its own precision (float32 0.1f == 0.1, as in PyTorch); an int64 */ \
    /* tensor compares in double, so a fractional scalar is not truncated. */                         \
    return scalar_map(a, [b](auto x) {                                                                \
      using T = decltype(x);                                                                          \
      if constexpr (std::is_floating_point_v<T>) return (x op static_cast<T>(b)) ? 1 : 0;             \
      else return (static_cast<double>(x) op b) ? 1 : 0;                                              \
    });                                                                                               \
  }
XG_COMPARISON(eq, ==)
XG_COMPARISON(ne, !=)
XG_COMPARISON(lt, <)
XG_COMPARISON(le, <=)
XG_COMPARISON(gt, >)
XG_COMPARISON(ge, >=)
#undef XG_COMPARISON

// ---- unary ---------------------------------------------------------------------------------------
Tensor neg(const Tensor& x) {
  detail::check_defined("neg", x);
  Tensor out = scalar_map(x, [](auto v) { return -v; });
  if (should_record({&x})) record("NegBackward", {x}, out, {}, [](const BackwardContext&, const Tensor& gy) { return TensorList{neg(gy)}; });
  return finish("neg", out);
}

Tensor exp(const Tensor& x) {
  Tensor out = unary_expression("exp", x, [](const auto& a) { return xt::exp(a); });
  if (should_record({&x})) {
    record("ExpBackward", {x}, out, {out}, [](const BackwardContext& ctx, const Tensor& gy) {
      return TensorList{mul(gy, ctx.saved(0))};  // d exp(x) = exp(x)
    });
  }
  return finish("exp", out);
}

Tensor log(const Tensor& x) {
  Tensor out = unary_expression("log", x, [](const auto& a) { return xt::log(a); });
  if (should_record({&x})) {
    record("LogBackward", {x}, out, {x}, [](const BackwardContext& ctx, const Tensor& gy) { return TensorList{div(gy, ctx.saved(0))}; });
  }
  return finish("log", out);
}

Tensor sqrt(const Tensor& x) {
  Tensor out = unary_expression("sqrt", x, [](const auto& a) { return xt::sqrt(a); });
  if (should_record({&x})) {
    record("SqrtBackward", {x}, out, {out}, [](const BackwardContext& ctx, const Tensor& gy) {
      return TensorList{div(mul(gy, 0.5), ctx.saved(0))};  // 1 / (2 sqrt(x))
    });
  }
  return finish("sqrt", out);
}

Tensor abs(const Tensor& x) {
  detail::check_defined("abs", x);
  Tensor out = scalar_map(x, [](auto v) { return v < 0 ? -v : v; });
  if (should_record({&x})) {
    record("AbsBackward", {x}, out, {x}, [](const BackwardContext& ctx, const Tensor& gy) {
      Tensor sign = mask_of(ctx.saved(0), [](auto v) { return v > 0; });
      sign = sub(sign, mask_of(ctx.saved(0), [](auto v) { return v < 0; }));
      return TensorList{mul(gy, sign)};
    });
    autograd::mark_piecewise_linear(out);  // PyTorch: grad * self.sgn(), sgn's derivative is zero
  }
  return finish("abs", out);
}

Tensor sin(const Tensor& x) {
  Tensor out = unary_expression("sin", x, [](const auto& a) { return xt::sin(a); });
  if (should_record({&x})) {
    record("SinBackward", {x}, out, {x}, [](const BackwardContext& ctx, const Tensor& gy) { return TensorList{mul(gy, cos(ctx.saved(0)))}; });
  }
  return finish("sin", out);
}

Tensor cos(const Tensor& x) {
  Tensor out = unary_expression("cos", x, [](const auto& a) { return xt::cos(a); });
  if (should_record({&x})) {
    record("CosBackward", {x}, out, {x}, [](const BackwardContext& ctx, const Tensor& gy) {
      return TensorList{neg(mul(gy, sin(ctx.saved(0))))};
    });
  }
  return finish("cos", out);
}

Tensor erf(const Tensor& x) {
  Tensor out = unary_expression("erf", x, [](const auto& a) { return xt::erf(a); });
  if (should_record({&x})) {
    record("ErfBackward", {x}, out, {x}, [](const BackwardContext& ctx, const Tensor& gy) {
      const Tensor& v = ctx.saved(0);
      return TensorList{mul(gy, mul(exp(neg(mul(v, v))), 2.0 / std::sqrt(M_PI)))};
    });
  }
  return finish("erf", out);
}

Tensor tanh(const Tensor& x) {
  Tensor out = unary_expression("tanh", x, [](const auto& a) { return xt::tanh(a); });
  if (should_record({&x})) {
    record("TanhBackward", {x}, out, {out}, [](const BackwardContext& ctx, const Tensor& gy) {
      const Tensor& y = ctx.saved(0);
      // d tanh = 1 - tanh^2. Without create_graph nothing records, so one fused pass will do.
      if (!autograd::GradMode::is_enabled() && gy.dtype() == y.dtype() && gy.has_shape(y.shape()) &&
          gy.is_contiguous() && y.is_contiguous()) {
        return TensorList{dispatch(y.dtype(), [&](auto tag) {
          using T = decltype(tag);
          Tensor result = detail::empty_tensor<T>(y.impl()->sizes);
          const T* py = y.contiguous_data<T>();
          const T* pg = gy.contiguous_data<T>();
          T* pr = result.contiguous_data<T>();
          const int64_t n = y.numel();
          for (int64_t i = 0; i < n; ++i) pr[i] = pg[i] * (T(1) - py[i] * py[i]);
          return result;
        })};
      }
      return TensorList{mul(gy, rsub(mul(y, y), 1.0))};
    });
  }
  return finish("tanh", out);
}

Tensor sigmoid(const Tensor& x) {
  Tensor out = dispatch_floating("sigmoid", x, [&](auto tag) {
    using T = decltype(tag);
    return unary_expression("sigmoid", x, [](const auto& a) { return T(1) / (T(1) + xt::exp(-a)); });
  });
  if (should_record({&x})) {
    record("SigmoidBackward", {x}, out, {out}, [](const BackwardContext& ctx, const Tensor& gy) {
      const Tensor& y = ctx.saved(0);
      return TensorList{mul(gy, mul(y, rsub(y, 1.0)))};
    });
  }
  return finish("sigmoid", out);
}

namespace {
/// gy where relu's output is positive, else 0, in one pass (PyTorch's threshold_backward; it was a
/// mask tensor and a mul). The mask is a constant, so this op's own backward is itself: higher
/// derivatives of relu keep working.
Tensor relu_backward(const Tensor& gy, const Tensor& out) {
  Tensor grad = binary_map("relu backward", gy, out, [](auto g, auto y) { return y <= 0 ? decltype(g)(0) : g; });
  if (should_record({&gy})) {
    record("ReluBackwardBackward", {gy}, grad, {out},
           [](const BackwardContext& ctx, const Tensor& gg) { return TensorList{relu_backward(gg, ctx.saved(0))}; });
  }
  return grad;
}
}  // namespace

Tensor relu(const Tensor& x) {
  dispatch_floating("relu", x, [](auto) { return 0; });
  // relu(NaN) = NaN with gradient passed through, as PyTorch's (its mask is "output <= 0", false for NaN).
  Tensor out = scalar_map(x, [](auto v) { return v <= 0 ? decltype(v)(0) : v; });
  if (should_record({&x})) {
    record("ReluBackward", {x}, out, {out},
           [](const BackwardContext& ctx, const Tensor& gy) { return TensorList{relu_backward(gy, ctx.saved(0))}; });
    autograd::mark_piecewise_linear(out);  // double backward: zeros, as PyTorch's threshold_backward
  }
  return finish("relu", out);
}

Tensor leaky_relu(const Tensor& x, double negative_slope) {
  dispatch_floating("leaky_relu", x, [](auto) { return 0; });
  XG_CHECK(std::isfinite(negative_slope), "leaky_relu: negative_slope must be finite, got {}", negative_slope);
  Tensor out = scalar_map(x, [negative_slope](auto v) { return v > 0 ? v : v * static_cast<decltype(v)>(negative_slope); });
  if (should_record({&x})) {
    record("LeakyReluBackward", {x}, out, {x}, [negative_slope](const BackwardContext& ctx, const Tensor& gy) {
      Tensor slope = scalar_map(ctx.saved(0), [negative_slope](auto v) { return v > 0 ? 1.0 : negative_slope; });
      return TensorList{mul(gy, slope)};
    });
    autograd::mark_piecewise_linear(out);
  }
  return finish("leaky_relu", out);
}

Tensor elu(const Tensor& x, double alpha) {
  dispatch_floating("elu", x, [](auto) { return 0; });
  Tensor out = scalar_map(x, [alpha](auto v) { return v > 0 ? v : static_cast<decltype(v)>(alpha) * std::expm1(v); });
  if (should_record({&x})) {
    record("EluBackward", {x}, out, {x, out}, [alpha](const BackwardContext& ctx, const Tensor& gy) {
      // x > 0: 1; otherwise alpha * exp(x) = out + alpha (a differentiable expression of out).
      // NaN counts as positive, as PyTorch's elu_backward (x <= 0 picks the exp branch).
      // (where, not a 0/1 blend: 0 * NaN would be NaN.)
      Tensor positive = mask_of(ctx.saved(0), [](auto v) { return !(v <= 0); });
      Tensor slope = where(positive, ones({}, gy.dtype()), add(ctx.saved(1), alpha));
      return TensorList{mul(gy, slope)};
    });
  }
  return finish("elu", out);
}

Tensor gelu(const Tensor& x, const std::string& approximate) {
  XG_CHECK(approximate == "none" || approximate == "tanh", "gelu: approximate must be \"none\" or \"tanh\", got \"{}\"", approximate);
  dispatch_floating("gelu", x, [](auto) { return 0; });
  const bool use_tanh = approximate == "tanh";
  constexpr double kSqrt2OverPi = 0.7978845608028654, kCoeff = 0.044715;
  Tensor out = scalar_map(x, [use_tanh](auto v) {
    using T = decltype(v);
    if (use_tanh) return T(0.5) * v * (T(1) + std::tanh(T(kSqrt2OverPi) * (v + T(kCoeff) * v * v * v)));
    return T(0.5) * v * (T(1) + std::erf(v * T(M_SQRT1_2)));
  });
  if (should_record({&x})) {
    record("GeluBackward", {x}, out, {x}, [use_tanh](const BackwardContext& ctx, const Tensor& gy) {
      const Tensor& v = ctx.saved(0);
      if (use_tanh) {
        Tensor inner = mul(add(v, mul(mul(mul(v, v), v), kCoeff)), kSqrt2OverPi);
        Tensor th = tanh(inner);
        Tensor d_inner = mul(add(mul(mul(v, v), 3.0 * kCoeff), 1.0), kSqrt2OverPi);
        Tensor slope = add(mul(add(th, 1.0), 0.5), mul(mul(mul(v, rsub(mul(th, th), 1.0)), d_inner), 0.5));
        return TensorList{mul(gy, slope)};
      }
      Tensor cdf = mul(add(erf(mul(v, M_SQRT1_2)), 1.0), 0.5);
      Tensor pdf = mul(exp(mul(mul(v, v), -0.5)), 1.0 / std::sqrt(2.0 * M_PI));
      return TensorList{mul(gy, add(cdf, mul(v, pdf)))};
    });
  }
  return finish("gelu", out);
}

Tensor softplus(const Tensor& x, double beta, double threshold) {
  dispatch_floating("softplus", x, [](auto) { return 0; });
  XG_CHECK(beta != 0 && std::isfinite(beta), "softplus: beta must be finite and nonzero, got {}", beta);
  // A NaN threshold silently disables the linear branch; +-inf are meaningful (never / always linear).
  XG_CHECK(!std::isnan(threshold), "softplus: threshold must not be NaN, got {}", threshold);
  Tensor out = scalar_map(x, [beta, threshold](auto v) {
    using T = decltype(v);
    T z = v * static_cast<T>(beta);
    return z > static_cast<T>(threshold) ? v : std::log1p(std::exp(z)) / static_cast<T>(beta);
  });
  if (should_record({&x})) {
    record("SoftplusBackward", {x}, out, {x}, [beta, threshold](const BackwardContext& ctx, const Tensor& gy) {
      Tensor z = mul(ctx.saved(0), beta);
      Tensor linear = mask_of(z, [threshold](auto v) { return v > threshold; });
      Tensor slope = add(linear, mul(rsub(linear, 1.0), sigmoid(z)));
      return TensorList{mul(gy, slope)};
    });
  }
  return finish("softplus", out);
}

Tensor clamp(const Tensor& x, std::optional<double> min, std::optional<double> max) {
  detail::check_defined("clamp", x);
  XG_CHECK(min.has_value() || max.has_value(), "clamp: at least one of min and max must be given");
  XG_CHECK(!(min && std::isnan(*min)) && !(max && std::isnan(*max)), "clamp: bounds must not be NaN");
  // An infinite bound is fine for any dtype (it is compared in double, never converted).
  for (const auto& bound : {min, max})
    if (bound && std::isfinite(*bound)) detail::check_scalar_operand("clamp", x.dtype(), *bound);
  const double lo = min.value_or(-INFINITY), hi = max.value_or(INFINITY);
  Tensor out = scalar_map(x, [lo, hi](auto v) {
    double d = static_cast<double>(v);
    // PyTorch: when min > max, every element becomes max.
    return static_cast<decltype(v)>(std::min(std::max(d, lo), hi));
  });
  if (should_record({&x})) {
    record("ClampBackward", {x}, out, {x}, [lo, hi](const BackwardContext& ctx, const Tensor& gy) {
      return TensorList{mul(gy, mask_of(ctx.saved(0), [lo, hi](auto v) { return v >= lo && v <= hi; }))};
    });
  }
  return finish("clamp", out);
}

Tensor to_dtype(const Tensor& x, Dtype target) {
  detail::check_defined("to", x);
  if (x.dtype() == target) return x;
  Tensor out = dispatch(x.dtype(), [&](auto from) {
    using From = decltype(from);
    return dispatch(target, [&](auto to) {
      using To = decltype(to);
      const Tensor dense = detail::dense(x);
      const auto in = dense.array<From>();
      Array<To> result(in.shape());
      std::transform(in.begin(), in.end(), result.begin(), [](From v) {
        if constexpr (std::is_floating_point_v<From> && std::is_integral_v<To>) {
          // NaN, +-inf and out-of-range values have no int64 value; the C++ cast would be undefined.
          // They become INT64_MIN, the value PyTorch's CPU conversion yields on x86.
          if (!(v >= From(-9223372036854775808.0) && v < From(9223372036854775808.0))) return std::numeric_limits<To>::min();
        }
        return static_cast<To>(v);
      });
      return detail::make_tensor(std::move(result));
    });
  });
  if (is_floating(target) && should_record({&x})) {
    Dtype source = x.dtype();
    record("ToCopyBackward", {x}, out, {}, [source](const BackwardContext&, const Tensor& gy) { return TensorList{to_dtype(gy, source)}; });
  }
  return out;
}

// ---- operators -----------------------------------------------------------------------------------
Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator+(const Tensor& a, double b) { return add(a, b); }
Tensor operator-(const Tensor& a, double b) { return sub(a, b); }
Tensor operator*(const Tensor& a, double b) { return mul(a, b); }
Tensor operator/(const Tensor& a, double b) { return div(a, b); }
Tensor operator+(double a, const Tensor& b) { return add(b, a); }
Tensor operator-(double a, const Tensor& b) { return rsub(b, a); }
Tensor operator*(double a, const Tensor& b) { return mul(b, a); }
Tensor operator/(double a, const Tensor& b) { return rdiv(b, a); }
Tensor operator-(const Tensor& x) { return neg(x); }
Tensor operator==(const Tensor& a, const Tensor& b) { return eq(a, b); }
Tensor operator!=(const Tensor& a, const Tensor& b) { return ne(a, b); }
Tensor operator<(const Tensor& a, const Tensor& b) { return lt(a, b); }
Tensor operator<=(const Tensor& a, const Tensor& b) { return le(a, b); }
Tensor operator>(const Tensor& a, const Tensor& b) { return gt(a, b); }
Tensor operator>=(const Tensor& a, const Tensor& b) { return ge(a, b); }
Tensor operator==(const Tensor& a, double b) { return eq(a, b); }
Tensor operator!=(const Tensor& a, double b) { return ne(a, b); }
Tensor operator<(const Tensor& a, double b) { return lt(a, b); }
Tensor operator<=(const Tensor& a, double b) { return le(a, b); }
Tensor operator>(const Tensor& a, double b) { return gt(a, b); }
Tensor operator>=(const Tensor& a, double b) { return ge(a, b); }
Tensor& operator+=(Tensor& a, const Tensor& b) { return a.add_(b); }
Tensor& operator-=(Tensor& a, const Tensor& b) { return a.sub_(b); }
Tensor& operator*=(Tensor& a, const Tensor& b) { return a.mul_(b); }
Tensor& operator/=(Tensor& a, const Tensor& b) { return a.div_(b); }
Tensor& operator+=(Tensor& a, double b) { return a.add_(b); }
Tensor& operator-=(Tensor& a, double b) { return a.sub_(b); }
Tensor& operator*=(Tensor& a, double b) { return a.mul_(b); }
Tensor& operator/=(Tensor& a, double b) { return a.div_(b); }

// ---- in-place --------------------------------------------------------------------------------------
namespace {

/// The checks every in-place op makes before writing, in PyTorch's order. Writing into a tensor
/// with internal overlap (an expanded view) or one that partially overlaps the operand would give
/// results that depend on the order of the loop: always an error. While autograd records, a leaf
/// that requires grad, a view of one, and a view whose creation forbids it (made under no-grad, one
/// of several outputs, from a custom Function) cannot be modified.
void check_inplace(const char* op, const Tensor& self, const Tensor* other = nullptr) {
  XG_CHECK(self.defined(), "{}: the tensor is undefined", op);
  XG_CHECK(self.is_contiguous() || !detail::has_internal_overlap(detail::geometry_of(self)),
           "{}: unsupported operation: more than one element of the written-to tensor refers to a single memory "
           "location. Please clone() the tensor before performing the operation (it has shape {} and strides {})",
           op, shape_string(self.shape()), shape_string(self.strides()));
  if (other != nullptr && other->defined()) detail::check_no_partial_overlap(op, self, *other);
  if (!autograd::GradMode::is_enabled()) return;
  const bool recording = self.requires_grad() || (other != nullptr && other->defined() && other->requires_grad());
  if (!recording) return;
  if (self.is_view()) autograd::check_view_inplace(op, self);
  XG_CHECK(!(self.is_leaf() && self.requires_grad()),
           "{}: a leaf tensor that requires grad is being used in an in-place operation (do parameter updates "
           "inside an xg::NoGradGuard scope)",
           op);
}

/// A copy of self's values with self's place in the graph: the input an in-place op records, so the
/// op's saved tensors are not the memory it is about to overwrite.
Tensor history_snapshot(const Tensor& self) {
  Tensor copy;
  {
    NoGradGuard no_grad;
    copy = self.clone();
  }
  copy.impl()->grad_fn = self.grad_fn();
  copy.impl()->output_nr = self.impl()->output_nr;
  copy.impl()->requires_grad = self.requires_grad();
  return copy;
}

/// Writes `value` (self's shape, contiguous or not) into self's elements, through self's strides.
void write_elements(Tensor& self, const Tensor& value) {
  dispatch(self.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if (self.is_contiguous() && value.is_contiguous()) {
      const T* src = value.contiguous_data<T>();
      T* dst = self.contiguous_data<T>();
      if (src != dst) std::copy(src, src + value.numel(), dst);
    } else {
      detail::copy_strided(detail::storage_data<T>(self), detail::geometry_of(self), detail::storage_data<T>(value),
                           detail::geometry_of(value));
    }
  });
}

/// Writes `result` into self (bumping the shared version counter) and, when result was recorded,
/// makes result's node self's history: directly for a tensor that is not a view, through its base
/// (CopySlices) for a view (PyTorch's rebase_history).
void commit_inplace(const char* op, Tensor& self, const Tensor& result) {
  XG_CHECK(result.shape() == self.shape(),
           "{}: the result of shape {} cannot be written in place into a tensor of shape {} (broadcasting "
           "would change the target's shape)",
           op, shape_string(result.shape()), shape_string(self.shape()));
  write_elements(self, result);
  ++self.impl()->storage->version;
  if (!result.requires_grad()) return;
  if (self.is_view()) {
    autograd::rebase_view_history(self, result);
    return;
  }
  std::shared_ptr<autograd::Node> old_fn = std::exchange(self.impl()->grad_fn, result.grad_fn());
  self.impl()->output_nr = result.impl()->output_nr;
  self.impl()->requires_grad = true;
  autograd::move_retained_grad(self.impl(), old_fn.get());
}

/// Overwrites self with `value` (self's shape and dtype) and records it: the gradient goes to value
/// and self's old history gets zeros (PyTorch's FillBackward / CopyBackwards). A non-leaf that
/// requires grad so stays in the graph, instead of dropping out and failing a later backward.
void commit_overwrite(const char* op, const char* node_name, Tensor& self, const Tensor& value) {
  Tensor result(detail::alias(value, false));
  record(node_name, {self, value}, result, {}, [](const BackwardContext& ctx, const Tensor& grad) {
    return TensorList{ctx.needs_grad(0) ? zeros_like(grad) : Tensor(), ctx.needs_grad(1) ? grad : Tensor()};
  });
  commit_inplace(op, self, result);
}

/// self = f(self, other) in place, other broadcast to self's shape; self may be any view.
template <class F>
void inplace_binary(const char* op, Tensor& self, const Tensor& other, F f) {
  detail::check_same_dtype(op, self, other);
  if (self.is_contiguous() && other.is_contiguous() && self.impl()->sizes == other.impl()->sizes) {
    // Same shapes (e.g. gradient accumulation): one flat loop, no shape vectors.
    dispatch(self.dtype(), [&](auto tag) {
      using T = decltype(tag);
      T* data = self.contiguous_data<T>();
      const T* src = other.contiguous_data<T>();
      const int64_t n = self.numel();
      for (int64_t i = 0; i < n; ++i) data[i] = static_cast<T>(f(data[i], src[i]));
    });
    ++self.impl()->storage->version;
    return;
  }
  const Shape ss = self.shape(), so = other.shape();
  XG_CHECK(detail::broadcast_shapes(op, ss, so) == ss, "{}: the operand of shape {} does not broadcast to the in-place target's shape {}",
           op, shape_string(so), shape_string(ss));
  dispatch(self.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const detail::Geometry target = detail::geometry_of(self);
    detail::Geometry source{target.sizes, Sizes(target.sizes.size(), 0), other.storage_offset()};
    const size_t lead = ss.size() - so.size();
    for (size_t d = 0; d < so.size(); ++d) source.strides[lead + d] = so[d] == 1 ? 0 : other.impl()->strides[d];
    detail::for_each_strided(detail::storage_data<T>(self), target, detail::storage_data<T>(other), source,
                             [&](T& x, const T& y) { x = static_cast<T>(f(x, y)); });
  });
  ++self.impl()->storage->version;
}

template <class F>
void inplace_scalar(Tensor& self, F f) {
  dispatch(self.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if (self.is_contiguous()) {
      T* data = self.contiguous_data<T>();
      const int64_t n = self.numel();
      for (int64_t i = 0; i < n; ++i) data[i] = static_cast<T>(f(data[i]));
    } else {
      const detail::Geometry g = detail::geometry_of(self);
      T* base = detail::storage_data<T>(self);
      detail::for_each_strided(base, g, base, g, [&](T& v, T&) { v = static_cast<T>(f(v)); });
    }
  });
  ++self.impl()->storage->version;
}

}  // namespace

Tensor& Tensor::add_(const Tensor& other, double alpha) {
  check_inplace("add_", *this, &other);
  detail::check_scalar_operand("add_", dtype(), alpha);
  if (should_record({this, &other})) commit_inplace("add_", *this, add(history_snapshot(*this), other, alpha));
  else inplace_binary("add_", *this, other, [alpha](auto x, auto y) { return x + alpha * y; });
  return *this;
}

Tensor& Tensor::sub_(const Tensor& other, double alpha) { return add_(other, -alpha); }

Tensor& Tensor::mul_(const Tensor& other) {
  check_inplace("mul_", *this, &other);
  if (should_record({this, &other})) commit_inplace("mul_", *this, mul(history_snapshot(*this), other));
  else inplace_binary("mul_", *this, other, [](auto x, auto y) { return x * y; });
  return *this;
}

Tensor& Tensor::div_(const Tensor& other) {
  check_inplace("div_", *this, &other);
  XG_CHECK(is_floating_point(), "div_: expected a floating-point tensor, got {}", dtype());
  if (should_record({this, &other})) commit_inplace("div_", *this, div(history_snapshot(*this), other));
  else inplace_binary("div_", *this, other, [](auto x, auto y) { return x / y; });
  return *this;
}

Tensor& Tensor::add_(double other) {
  check_inplace("add_", *this);
  detail::check_scalar_operand("add_", dtype(), other);
  if (should_record({this})) commit_inplace("add_", *this, add(history_snapshot(*this), other));
  else inplace_scalar(*this, [other](auto v) { return v + other; });
  return *this;
}

Tensor& Tensor::sub_(double other) {
  check_inplace("sub_", *this);
  detail::check_scalar_operand("sub_", dtype(), other);
  return add_(-other);
}

Tensor& Tensor::mul_(double other) {
  check_inplace("mul_", *this);
  detail::check_scalar_operand("mul_", dtype(), other);
  if (should_record({this})) commit_inplace("mul_", *this, mul(history_snapshot(*this), other));
  else inplace_scalar(*this, [other](auto v) { return v * other; });
  return *this;
}

Tensor& Tensor::div_(double other) {
  check_inplace("div_", *this);
  XG_CHECK(is_floating_point(), "div_: expected a floating-point tensor, got {}", dtype());
  return mul_(1.0 / other);
}

Tensor& Tensor::fill_(double value) {
  check_inplace("fill_", *this);
  detail::check_scalar_fits("fill_", dtype(), value);  // a fractional value truncates, as PyTorch's fill_
  if (should_record({this})) commit_overwrite("fill_", "FillBackward", *this, full_like(*this, value));
  else inplace_scalar(*this, [value](auto) { return value; });
  return *this;
}

Tensor& Tensor::zero_() { return fill_(0.0); }

Tensor& Tensor::uniform_(double from, double to) {
  check_inplace("uniform_", *this);
  XG_CHECK(is_floating(dtype()), "uniform_: expected a floating tensor, got {}", dtype());
  XG_CHECK(std::isfinite(from) && std::isfinite(to) && from <= to, "uniform_: expects to return a [from, to) range, but found from={} > to={}",
           from, to);
  Tensor values;
  {
    NoGradGuard no_grad;
    values = xg::add(xg::mul(xg::rand(shape(), dtype()), to - from), from);
  }
  return copy_(values);
}

Tensor& Tensor::normal_(double mean, double std) {
  check_inplace("normal_", *this);
  XG_CHECK(is_floating(dtype()), "normal_: expected a floating tensor, got {}", dtype());
  XG_CHECK(std::isfinite(mean) && std >= 0 && std::isfinite(std), "normal_: expects std >= 0.0 (and finite mean and std), got mean={} std={}",
           mean, std);
  Tensor values;
  {
    NoGradGuard no_grad;
    values = xg::add(xg::mul(xg::randn(shape(), dtype()), std), mean);
  }
  return copy_(values);
}

Tensor& Tensor::bernoulli_(double p) {
  check_inplace("bernoulli_", *this);
  XG_CHECK(p >= 0 && p <= 1, "bernoulli_: expected p in [0, 1], got {}", p);
  Tensor values;
  {
    NoGradGuard no_grad;
    values = xg::to_dtype(xg::lt(xg::rand(shape(), kFloat64), p), dtype());
  }
  return copy_(values);
}

Tensor& Tensor::random_(int64_t from, int64_t to) {
  check_inplace("random_", *this);
  XG_CHECK(from < to, "random_: expects 'from' to be less than 'to', but got from={} >= to={}", from, to);
  Tensor values;
  {
    NoGradGuard no_grad;
    values = xg::randint(from, to, shape(), kInt64);
    if (dtype() != kInt64) values = values.to(dtype());
  }
  return copy_(values);
}

Tensor& Tensor::random_(int64_t to) { return random_(0, to); }

Tensor& Tensor::fill_diagonal_(double value, bool wrap) {
  check_inplace("fill_diagonal_", *this);
  XG_CHECK(dim() >= 2, "fill_diagonal_: dimensions must larger than 1, got shape {}", shape_string(shape()));
  const Shape s = shape();
  if (dim() > 2)
    for (int64_t d = 1; d < dim(); ++d)
      XG_CHECK(s[d] == s[0], "fill_diagonal_: all dimensions of input must be of equal length, got shape {}", shape_string(s));
  // The diagonal's flat positions in the row-major layout: a step of sum(row-major strides); without
  // wrap, only the first xg::min(rows, cols) of them.
  int64_t step = 0, stride = 1, total = 1;
  for (int64_t d = dim() - 1; d >= 0; --d) {
    step += stride;
    stride *= s[d];
    total *= s[d];
  }
  const int64_t count = wrap && dim() == 2 ? (total + step - 1) / step : std::min(s[0], s[1]);
  Tensor mask = xg::zeros(s, kInt64);
  int64_t* m = mask.contiguous_data<int64_t>();
  for (int64_t k = 0; k < count && k * step < total; ++k) m[k * step] = 1;
  // Only the diagonal is overwritten: the other elements keep their values and their gradient.
  return copy_(xg::where(mask, xg::full({}, value, dtype()), *this));
}

Tensor& Tensor::copy_(const Tensor& src) {
  detail::check_defined("copy_", src);
  check_inplace("copy_", *this, &src);
  XG_CHECK(detail::broadcast_shapes("copy_", shape(), src.shape()) == shape(),
           "copy_: the source of shape {} does not broadcast to the destination's shape {}", shape_string(src.shape()),
           shape_string(shape()));
  Tensor converted = to_dtype(src, dtype());
  Tensor value = converted.has_shape(shape()) ? converted : xg::expand(converted, shape());  // a stride-0 view
  if (should_record({this, &value})) commit_overwrite("copy_", "CopyBackwards", *this, value);
  else commit_inplace("copy_", *this, value.detach());
  return *this;
}

}  // namespace xg
