// L-BFGS following torch.optim.LBFGS's documented behaviour: the two-loop recursion over at most
// history_size curvature pairs, a first step of min(1, 1/|g|_1) * lr, and optionally the strong-Wolfe
// line search with cubic interpolation (Nocedal & Wright, Algorithms 3.5 and 3.6) with PyTorch's constants.
#include "xgrad/optim/lbfgs.hpp"

#include <algorithm>
#include <array>
#include <cmath>

#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/autograd/ops.hpp"

namespace xg::optim {
namespace {

using Vector = std::vector<double>;

double dot(const Vector& a, const Vector& b) {
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) sum += a[i] * b[i];
  return sum;
}

double max_abs(const Vector& a) {
  double m = 0;
  for (double v : a) m = std::max(m, std::abs(v));
  return m;
}

double sum_abs(const Vector& a) {
  double s = 0;
  for (double v : a) s += std::abs(v);
  return s;
}

/// The minimiser of the cubic through (x1, f1, slope g1) and (x2, f2, slope g2), clamped to the bounds
/// (default: the interval between x1 and x2); the middle of the bounds when the cubic has no minimum.
double cubic_interpolate(double x1, double f1, double g1, double x2, double f2, double g2,
                         std::optional<std::pair<double, double>> bounds = std::nullopt) {
  double lower, upper;
  if (bounds) {
    std::tie(lower, upper) = *bounds;
  } else {
    lower = std::min(x1, x2);
    upper = std::max(x1, x2);
  }
  const double d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2);
  const double d2_square = d1 * d1 - g1 * g2;
  if (d2_square >= 0) {
    const double d2 = std::sqrt(d2_square);
    const double min_pos = x1 <= x2 ? x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
                                    : x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2));
    return std::min(std::max(min_pos, lower), upper);
  }
  return (lower + upper) / 2;
}

struct Evaluation {
  double loss;
  Vector grad;
};

struct LineSearchResult {
  double loss;
  Vector grad;
  double t;
  int64_t evaluations;
};

/// Finds a step t along d satisfying the strong Wolfe conditions (sufficient decrease c1, curvature c2):
/// a bracketing phase that extrapolates by cubic interpolation within [t + 0.01 (t - t_prev), 10 t], then a
/// zoom phase that shrinks the bracket, guarding against steps too close to its ends.
LineSearchResult strong_wolfe(const std::function<Evaluation(double)>& evaluate, double t, const Vector& d, double f,
                              const Vector& g, double gtd, double c1 = 1e-4, double c2 = 0.9,
                              double tolerance_change = 1e-9, int max_ls = 25) {
  const double d_norm = max_abs(d);
  Evaluation current = evaluate(t);
  int64_t evaluations = 1;
  double gtd_new = dot(current.grad, d);
  double t_prev = 0, f_prev = f, gtd_prev = gtd;
  Vector g_prev = g;
  bool done = false;
  int ls_iter = 0;
  std::array<double, 2> bracket{}, bracket_f{}, bracket_gtd{};
  std::array<Vector, 2> bracket_g;
  int bracket_size = 0;
  auto set_bracket = [&](double t0, double f0, const Vector& g0, double gtd0, double t1, double f1, const Vector& g1,
                         double gtd1) {
    bracket = {t0, t1};
    bracket_f = {f0, f1};
    bracket_g = {g0, g1};
    bracket_gtd = {gtd0, gtd1};
    bracket_size = 2;
  };
  while (ls_iter < max_ls) {
    if (current.loss > f + c1 * t * gtd || (ls_iter > 1 && current.loss >= f_prev)) {
      set_bracket(t_prev, f_prev, g_prev, gtd_prev, t, current.loss, current.grad, gtd_new);
      break;
    }
    if (std::abs(gtd_new) <= -c2 * gtd) {
      bracket[0] = t;
      bracket_f[0] = current.loss;
      bracket_g[0] = current.grad;
      bracket_size = 1;
      done = true;
      break;
    }
    if (gtd_new >= 0) {
      set_bracket(t_prev, f_prev, g_prev, gtd_prev, t, current.loss, current.grad, gtd_new);
      break;
    }
    // Extrapolate: the cubic's minimiser, at least 1% beyond t and at most 10 t.
    const double min_step = t + 0.01 * (t - t_prev);
    const double max_step = t * 10;
    const double previous_t = t;
    t = cubic_interpolate(t_prev, f_prev, gtd_prev, t, current.loss, gtd_new, std::make_pair(min_step, max_step));
    t_prev = previous_t;
    f_prev = current.loss;
    g_prev = current.grad;
    gtd_prev = gtd_new;
    current = evaluate(t);
    ++evaluations;
    gtd_new = dot(current.grad, d);
    ++ls_iter;
  }
  if (ls_iter == max_ls) set_bracket(0, f, g, gtd, t, current.loss, current.grad, gtd_new);

  // Zoom: shrink the bracket until the strong Wolfe conditions hold.
  bool insufficient_progress = false;
  int low = bracket_f[0] <= bracket_f[bracket_size - 1] ? 0 : 1;
  int high = 1 - low;
  while (!done && ls_iter < max_ls) {
    if (std::abs(bracket[1] - bracket[0]) * d_norm < tolerance_change) break;
    t = cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0], bracket[1], bracket_f[1], bracket_gtd[1]);
    // A step within 10% of the bracket's ends makes little progress: move it inside when that happens twice
    // in a row or when it lies on or outside an end.
    const double bracket_max = std::max(bracket[0], bracket[1]), bracket_min = std::min(bracket[0], bracket[1]);
    const double eps = 0.1 * (bracket_max - bracket_min);
    if (std::min(bracket_max - t, t - bracket_min) < eps) {
      if (insufficient_progress || t >= bracket_max || t <= bracket_min) {
        t = std::abs(t - bracket_max) < std::abs(t - bracket_min) ? bracket_max - eps : bracket_min + eps;
        insufficient_progress = false;
      } else {
        insufficient_progress = true;
      }
    } else {
      insufficient_progress = false;
    }
    current = evaluate(t);
    ++evaluations;
    gtd_new = dot(current.grad, d);
    ++ls_iter;
    if (current.loss > f + c1 * t * gtd || current.loss >= bracket_f[low]) {
      // Sufficient decrease fails: t becomes the high end.
      bracket[high] = t;
      bracket_f[high] = current.loss;
      bracket_g[high] = current.grad;
      bracket_gtd[high] = gtd_new;
      low = bracket_f[0] <= bracket_f[1] ? 0 : 1;
      high = 1 - low;
    } else {
      if (std::abs(gtd_new) <= -c2 * gtd) {
        done = true;
      } else if (gtd_new * (bracket[high] - bracket[low]) >= 0) {
        bracket[high] = bracket[low];
        bracket_f[high] = bracket_f[low];
        bracket_g[high] = bracket_g[low];
        bracket_gtd[high] = bracket_gtd[low];
      }
      bracket[low] = t;
      bracket_f[low] = current.loss;
      bracket_g[low] = current.grad;
      bracket_gtd[low] = gtd_new;
    }
  }
  return {bracket_f[low], std::move(bracket_g[low]), bracket[low], evaluations};
}

Tensor vector_tensor(const Vector& values) { return tensor(values, {static_cast<int64_t>(values.size())}, kFloat64); }

Vector tensor_vector(const Tensor& t) {
  const Tensor data_dense = xg::detail::dense(t);
  const double* data = data_dense.contiguous_data<double>();
  return Vector(data, data + t.numel());
}

double loss_value(const Tensor& loss) {
  XG_CHECK(loss.defined() && loss.numel() == 1,
           "LBFGS: the closure must return the loss as a one-element tensor, got {}",
           loss.defined() ? "shape " + shape_string(loss.shape()) : std::string("an undefined tensor"));
  return loss.item<double>();
}

}  // namespace

// ---- state ------------------------------------------------------------------------------------------
void LBFGSParamState::fields(StateFields& f) {
  f.counter("func_evals", func_evals);
  f.counter("n_iter", n_iter);
  f.scalar("t", t);
  f.scalar("H_diag", H_diag);
  f.scalar("prev_loss", prev_loss);
  const bool loading = f.loading();
  auto flat = [&](const char* name, Vector& values) {
    Tensor t = loading || values.empty() ? Tensor() : vector_tensor(values);
    f.tensor(name, t, /*required=*/false, Shape{numel}, kFloat64);
    if (loading) values = t.defined() ? tensor_vector(t) : Vector();
  };
  flat("d", d);
  flat("prev_flat_grad", prev_flat_grad);
  auto history = [&](const char* name, std::deque<Vector>& rows) {
    Tensor t;
    if (!loading && !rows.empty()) {
      Vector stacked;
      for (const Vector& row : rows) stacked.insert(stacked.end(), row.begin(), row.end());
      t = tensor(stacked, {static_cast<int64_t>(rows.size()), numel}, kFloat64);
    }
    f.tensor(name, t, /*required=*/false, Shape{-1, numel}, kFloat64);
    if (loading) {
      rows.clear();
      if (t.defined()) {
        const Tensor data_dense = xg::detail::dense(t);
        const double* data = data_dense.contiguous_data<double>();
        for (int64_t r = 0; r < t.size(0); ++r) rows.emplace_back(data + r * numel, data + (r + 1) * numel);
      }
    }
  };
  history("old_dirs", old_dirs);
  history("old_stps", old_stps);
  Vector rho(ro.begin(), ro.end());
  Tensor rho_tensor = loading || rho.empty() ? Tensor() : vector_tensor(rho);
  f.tensor("ro", rho_tensor, /*required=*/false, Shape{-1}, kFloat64);
  if (loading) {
    ro.clear();
    if (rho_tensor.defined())
      for (double v : tensor_vector(rho_tensor)) ro.push_back(v);
    XG_CHECK(old_dirs.size() == old_stps.size() && old_dirs.size() == ro.size(),
             "LBFGS: load_state_dict: old_dirs, old_stps and ro hold {}, {} and {} entries (expected equal counts)",
             old_dirs.size(), old_stps.size(), ro.size());
  }
}

// ---- optimizer ------------------------------------------------------------------------------------
LBFGS::LBFGS(TensorList params, LBFGSOptions defaults)
    : LBFGS(std::vector<OptimizerParamGroup>{OptimizerParamGroup(std::move(params))}, defaults) {}

LBFGS::LBFGS(std::vector<OptimizerParamGroup> param_groups, LBFGSOptions defaults)
    : Optimizer(std::make_unique<LBFGSOptions>(defaults), "LBFGS") {
  XG_CHECK(param_groups.size() == 1,
           "LBFGS: doesn't support per-parameter options (parameter groups): expected 1 group, got {}",
           param_groups.size());
  add_param_groups(param_groups);
}

void LBFGS::check_options(const OptimizerOptions& options) const {
  const auto* o = dynamic_cast<const LBFGSOptions*>(&options);
  XG_CHECK(o != nullptr, "LBFGS: the options of a parameter group are not LBFGSOptions");
  XG_CHECK(o->lr() >= 0, "LBFGS: invalid learning rate: {} (expected >= 0)", o->lr());
  XG_CHECK(o->max_iter() > 0, "LBFGS: invalid max_iter: {} (expected > 0)", o->max_iter());
  XG_CHECK(!o->max_eval() || *o->max_eval() > 0, "LBFGS: invalid max_eval: {} (expected > 0)", o->max_eval().value_or(0));
  XG_CHECK(o->tolerance_grad() >= 0, "LBFGS: invalid tolerance_grad: {} (expected >= 0)", o->tolerance_grad());
  XG_CHECK(o->tolerance_change() >= 0, "LBFGS: invalid tolerance_change: {} (expected >= 0)", o->tolerance_change());
  XG_CHECK(o->history_size() > 0, "LBFGS: invalid history_size: {} (expected > 0)", o->history_size());
  XG_CHECK(!o->line_search_fn() || *o->line_search_fn() == "strong_wolfe",
           "LBFGS: only 'strong_wolfe' is supported as line_search_fn, got '{}'", o->line_search_fn().value_or(""));
}

std::unique_ptr<OptimizerParamState> LBFGS::make_param_state(const Tensor&) const {
  auto state = std::make_unique<LBFGSParamState>();
  state->numel = total_numel();
  return state;
}

int64_t LBFGS::total_numel() const {
  int64_t n = 0;
  for (const auto& group : param_groups_)
    for (const Tensor& p : group.params()) n += p.numel();
  return n;
}

std::vector<double> LBFGS::gather_flat_grad() const {
  Vector flat(static_cast<size_t>(total_numel()), 0.0);
  size_t offset = 0;
  for (const Tensor& p : param_groups_[0].params()) {
    const Tensor grad = p.grad();
    if (grad.defined()) {
      check_grad(p, grad);
      detail::dispatch_float(p, [&](auto tag) {
        using T = decltype(tag);
        const Tensor g_dense = xg::detail::dense(grad);
        const T* g = g_dense.contiguous_data<T>();
        for (int64_t i = 0; i < p.numel(); ++i) flat[offset + i] = static_cast<double>(g[i]);
      });
    }
    offset += static_cast<size_t>(p.numel());
  }
  return flat;
}

std::vector<double> LBFGS::gather_params() const {
  Vector flat(static_cast<size_t>(total_numel()));
  size_t offset = 0;
  for (const Tensor& p : param_groups_[0].params()) {
    detail::dispatch_float(p, [&](auto tag) {
      using T = decltype(tag);
      const Tensor data_dense = xg::detail::dense(p);
      const T* data = data_dense.contiguous_data<T>();
      for (int64_t i = 0; i < p.numel(); ++i) flat[offset + i] = static_cast<double>(data[i]);
    });
    offset += static_cast<size_t>(p.numel());
  }
  return flat;
}

void LBFGS::set_params(const std::vector<double>& values) {
  size_t offset = 0;
  for (const Tensor& p : param_groups_[0].params()) {
    detail::dispatch_float(p, [&](auto tag) {
      using T = decltype(tag);
      T* data = p.contiguous_data<T>();
      for (int64_t i = 0; i < p.numel(); ++i) data[i] = static_cast<T>(values[offset + i]);
    });
    detail::bump_version(p);
    offset += static_cast<size_t>(p.numel());
  }
}

void LBFGS::add_to_params(double step, const std::vector<double>& direction) {
  size_t offset = 0;
  for (const Tensor& p : param_groups_[0].params()) {
    detail::dispatch_float(p, [&](auto tag) {
      using T = decltype(tag);
      T* data = p.contiguous_data<T>();
      for (int64_t i = 0; i < p.numel(); ++i)
        data[i] = static_cast<T>(static_cast<double>(data[i]) + step * direction[offset + i]);
    });
    detail::bump_version(p);
    offset += static_cast<size_t>(p.numel());
  }
}

Tensor LBFGS::step(LossClosure closure) {
  XG_CHECK(closure != nullptr,
           "LBFGS: step needs a closure that zeroes the gradients, computes the loss, calls backward and returns "
           "the loss");
  XG_CHECK(param_groups_.size() == 1, "LBFGS: doesn't support per-parameter options (parameter groups): got {} groups",
           param_groups_.size());
  const auto& options = static_cast<const LBFGSOptions&>(param_groups_[0].options());
  XG_CHECK(!param_groups_[0].params().empty(), "LBFGS: the parameter group is empty");
  const double lr = options.lr();
  const int64_t max_iter = options.max_iter();
  const int64_t max_eval = options.max_eval().value_or(max_iter * 5 / 4);
  const double tolerance_grad = options.tolerance_grad(), tolerance_change = options.tolerance_change();
  const size_t history_size = static_cast<size_t>(options.history_size());
  const bool line_search = options.line_search_fn().has_value();

  auto& state = param_state<LBFGSParamState>(param_groups_[0].params()[0]);
  state.numel = total_numel();
  NoGradGuard no_grad;  // parameter updates; evaluate_closure turns recording back on for the closure

  const Tensor orig_loss = evaluate_closure(closure);
  double loss = loss_value(orig_loss);
  int64_t current_evals = 1;
  ++state.func_evals;
  Vector flat_grad = gather_flat_grad();
  if (max_abs(flat_grad) <= tolerance_grad) return orig_loss;  // already optimal

  Vector& d = state.d;
  double& t = state.t;
  int64_t n_iter = 0;
  while (n_iter < max_iter) {
    ++n_iter;
    ++state.n_iter;
    if (state.n_iter == 1) {
      d.resize(flat_grad.size());
      for (size_t i = 0; i < d.size(); ++i) d[i] = -flat_grad[i];
      state.old_dirs.clear();
      state.old_stps.clear();
      state.ro.clear();
      state.H_diag = 1;
    } else {
      // Curvature pair from the last step; kept only when y.s > 1e-10 (positive curvature).
      Vector y(flat_grad.size()), s(flat_grad.size());
      for (size_t i = 0; i < y.size(); ++i) {
        y[i] = flat_grad[i] - state.prev_flat_grad[i];
        s[i] = d[i] * t;
      }
      const double ys = dot(y, s);
      if (ys > 1e-10) {
        if (state.old_dirs.size() == history_size) {
          state.old_dirs.pop_front();
          state.old_stps.pop_front();
          state.ro.pop_front();
        }
        state.H_diag = ys / dot(y, y);
        state.old_dirs.push_back(std::move(y));
        state.old_stps.push_back(std::move(s));
        state.ro.push_back(1.0 / ys);
      }
      // Two-loop recursion: d = -H g with H the L-BFGS inverse-Hessian approximation.
      const size_t history = state.old_dirs.size();
      Vector alpha(history);
      Vector q(flat_grad.size());
      for (size_t i = 0; i < q.size(); ++i) q[i] = -flat_grad[i];
      for (size_t k = history; k-- > 0;) {
        alpha[k] = dot(state.old_stps[k], q) * state.ro[k];
        const Vector& y_k = state.old_dirs[k];
        for (size_t i = 0; i < q.size(); ++i) q[i] -= alpha[k] * y_k[i];
      }
      for (size_t i = 0; i < q.size(); ++i) d[i] = q[i] * state.H_diag;
      for (size_t k = 0; k < history; ++k) {
        const double beta = dot(state.old_dirs[k], d) * state.ro[k];
        const Vector& s_k = state.old_stps[k];
        for (size_t i = 0; i < d.size(); ++i) d[i] += (alpha[k] - beta) * s_k[i];
      }
    }
    state.prev_flat_grad = flat_grad;
    state.prev_loss = loss;

    t = state.n_iter == 1 ? std::min(1.0, 1.0 / sum_abs(flat_grad)) * lr : lr;
    const double gtd = dot(flat_grad, d);  // directional derivative
    if (gtd > -tolerance_change) break;    // not a descent direction any more

    int64_t ls_func_evals = 0;
    bool opt_cond = false;
    if (line_search) {
      const Vector x_init = gather_params();
      auto evaluate = [&](double step) {
        add_to_params(step, d);
        const double value = loss_value(evaluate_closure(closure));
        Vector grad = gather_flat_grad();
        set_params(x_init);
        return Evaluation{value, std::move(grad)};
      };
      LineSearchResult result = strong_wolfe(evaluate, t, d, loss, flat_grad, gtd);
      loss = result.loss;
      flat_grad = std::move(result.grad);
      t = result.t;
      ls_func_evals = result.evaluations;
      add_to_params(t, d);
      opt_cond = max_abs(flat_grad) <= tolerance_grad;
    } else {
      add_to_params(t, d);
      if (n_iter != max_iter) {
        // Re-evaluate only when another iteration follows.
        loss = loss_value(evaluate_closure(closure));
        flat_grad = gather_flat_grad();
        opt_cond = max_abs(flat_grad) <= tolerance_grad;
        ls_func_evals = 1;
      }
    }
    current_evals += ls_func_evals;
    state.func_evals += ls_func_evals;

    if (n_iter == max_iter) break;
    if (current_evals >= max_eval) break;
    if (opt_cond) break;
    if (max_abs(d) * std::abs(t) <= tolerance_change) break;  // step too small
    if (std::abs(loss - state.prev_loss) < tolerance_change) break;
  }
  return orig_loss;
}

}  // namespace xg::optim
