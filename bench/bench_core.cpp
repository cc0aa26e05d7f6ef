// bench_core: xgrad's core costs, each against a baseline measured in the same run.
//
//   overhead   a chain of 100 elementwise ops on a 16-float tensor, forward + backward: the fixed
//              per-op cost of the tape (dispatch, allocation, node recording, engine). µs per op.
//              Target: <= 1 µs/op.
//   tanh_bias  y = tanh(x + bias), x [64, 1000] f32, bias [1000] broadcast, forward only, against
//              hand-written loops on the same buffers (plain std::tanh loop, the same loop built with
//              -ffast-math so GCC vectorises it through libmvec, and an xsimd loop). Ratio
//              xgrad / fastest reference. Target: <= 1.5.
//   matmul     1024 x 1024 f32 xg::matmul against cblas_sgemm called directly on the same buffers.
//              GFLOP/s and the fraction xgrad / sgemm. Target: >= 90 %.
//
// Contenders alternate repetition by repetition (the order rotates every repetition); all figures
// are medians over >= 20 timed repetitions after warm-up. Usage: bench_core --help.
#include <cblas.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include <xgrad/xgrad.hpp>

#include "bench_common.hpp"

namespace {

using bench::Clock;
using bench::Options;
using bench::Stats;
using bench::stats_of;
using bench::alternate;
using bench::fmt_num;
using bench::g_summary;
using bench::paired_ratios;
using bench::Row;

constexpr const char* kBinary = "bench_core";

// =====================================================================================================
// a. overhead: 100 elementwise ops on 16 floats, forward + backward
// =====================================================================================================
constexpr int kChainOps = 100;
constexpr int kChainN = 16;

/// 20 x (x*w, x+b, tanh, x*1.0001, x+0.001): tensor-tensor, unary and tensor-scalar ops, with two
/// parameters (w, b) used 20 times each, so backward also accumulates into leaves.
xg::Tensor chain(xg::Tensor x, const xg::Tensor& w, const xg::Tensor& b) {
  for (int i = 0; i < kChainOps / 5; ++i) {
    x = xg::mul(x, w);
    x = xg::add(x, b);
    x = xg::tanh(x);
    x = xg::mul(x, 1.0001);
    x = xg::add(x, 0.001);
  }
  return x;
}

/// The same chain by hand on float arrays (forward with saved activations + backward), for the
/// correctness check and as the "no framework at all" floor.
struct RawChain {
  std::vector<float> acts;  // activation before each op: (kChainOps + 1) x kChainN
  float gx[kChainN], gw[kChainN], gb[kChainN];
  RawChain() : acts((kChainOps + 1) * kChainN) {}
  void run(const float* x0, const float* w, const float* b) {
    float* a = acts.data();
    for (int j = 0; j < kChainN; ++j) a[j] = x0[j];
    for (int op = 0; op < kChainOps; ++op) {
      const float* in = a + op * kChainN;
      float* out = a + (op + 1) * kChainN;
      switch (op % 5) {
        case 0: for (int j = 0; j < kChainN; ++j) out[j] = in[j] * w[j]; break;
        case 1: for (int j = 0; j < kChainN; ++j) out[j] = in[j] + b[j]; break;
        case 2: for (int j = 0; j < kChainN; ++j) out[j] = std::tanh(in[j]); break;
        case 3: for (int j = 0; j < kChainN; ++j) out[j] = in[j] * 1.0001f; break;
        default: for (int j = 0; j < kChainN; ++j) out[j] = in[j] + 0.001f; break;
      }
    }
    float g[kChainN];
    for (int j = 0; j < kChainN; ++j) g[j] = 1.0f, gw[j] = 0.0f, gb[j] = 0.0f;  // d sum / d y = 1
    for (int op = kChainOps - 1; op >= 0; --op) {
      const float* in = a + op * kChainN;
      const float* out = a + (op + 1) * kChainN;
      switch (op % 5) {
        case 0: for (int j = 0; j < kChainN; ++j) gw[j] += g[j] * in[j], g[j] *= w[j]; break;
        case 1: for (int j = 0; j < kChainN; ++j) gb[j] += g[j]; break;
        case 2: for (int j = 0; j < kChainN; ++j) g[j] *= 1.0f - out[j] * out[j]; break;
        case 3: for (int j = 0; j < kChainN; ++j) g[j] *= 1.0001f; break;
        default: break;
      }
    }
    for (int j = 0; j < kChainN; ++j) gx[j] = g[j];
  }
};

double max_rel_diff(const float* a, const float* b, int n) {
  double m = 0;
  for (int i = 0; i < n; ++i) m = std::max(m, std::abs(double(a[i]) - double(b[i])) / (1e-6 + std::abs(double(b[i]))));
  return m;
}

void bench_overhead(const Options& opt) {
  std::printf("-- overhead: chain of %d elementwise ops on a [%d] float32 tensor, forward + backward --\n", kChainOps,
              kChainN);
  std::printf("   ops: 20 x (mul(x, w), add(x, b), tanh(x), mul(x, 1.0001), add(x, 0.001)); then sum().backward()\n");
  xg::manual_seed(1);
  xg::Tensor x0 = xg::randn({kChainN}).requires_grad_();
  xg::Tensor w = xg::add(xg::mul(xg::randn({kChainN}), 0.01), 1.0).requires_grad_();
  xg::Tensor b = xg::mul(xg::randn({kChainN}), 0.01).requires_grad_();

  auto clear_grads = [&] {
    x0.set_grad({});
    w.set_grad({});
    b.set_grad({});
  };
  auto fwd_bwd_once = [&] {
    clear_grads();
    xg::Tensor y = chain(x0, w, b);
    y.sum().backward();
  };  // the graph is freed here (included in the time, as in a training step)

  // Correctness against the hand-written chain.
  {
    fwd_bwd_once();
    RawChain raw;
    raw.run(x0.data_ptr<float>(), w.data_ptr<float>(), b.data_ptr<float>());
    double e = std::max({max_rel_diff(x0.grad().data_ptr<float>(), raw.gx, kChainN),
                         max_rel_diff(w.grad().data_ptr<float>(), raw.gw, kChainN),
                         max_rel_diff(b.grad().data_ptr<float>(), raw.gb, kChainN)});
    std::printf("   check: gradients vs hand-written backward: max rel diff %.2e %s\n", e, e < 1e-3 ? "(ok)" : "(MISMATCH)");
  }

  if (opt.profile > 0) {
    bench::profile_loop(opt, "overhead: 100-op chain forward + backward", fwd_bwd_once);
    return;
  }

  // Allocation census of one forward + backward (not timed).
  {
    for (int i = 0; i < 3; ++i) fwd_bwd_once();
    auto a0 = xg::allocator_stats();
    uint64_t n0 = bench::new_calls();
    fwd_bwd_once();
    uint64_t n1 = bench::new_calls();
    auto a1 = xg::allocator_stats();
    uint64_t buffers = (a1.cache_hits + a1.system_allocations) - (a0.cache_hits + a0.system_allocations);

    xg::Tensor keep;
    uint64_t f0 = bench::new_calls();
    auto af0 = xg::allocator_stats();
    keep = chain(x0, w, b);
    auto af1 = xg::allocator_stats();
    uint64_t f1 = bench::new_calls();
    keep = xg::Tensor();
    uint64_t fwd_buffers = (af1.cache_hits + af1.system_allocations) - (af0.cache_hits + af0.system_allocations);

    uint64_t g0 = bench::new_calls();
    {
      xg::NoGradGuard no_grad;
      keep = chain(x0, w, b);
    }
    uint64_t g1 = bench::new_calls();
    keep = xg::Tensor();
    std::printf("   allocations per op: operator new %.2f (forward recording %.2f, no-grad forward %.2f), "
                "tensor buffers %.2f (forward %.2f); cache misses in the step: %llu\n",
                double(n1 - n0) / kChainOps, double(f1 - f0) / kChainOps, double(g1 - g0) / kChainOps,
                double(buffers) / kChainOps, double(fwd_buffers) / kChainOps,
                static_cast<unsigned long long>(a1.system_allocations - a0.system_allocations));
  }

  const int inner = 20;  // chains per timed repetition (~2k ops)
  const int reps = bench::reps_for(opt, 60);
  RawChain raw;
  std::vector<std::function<double()>> contenders = {
      // 0: forward + backward (the headline)
      [&] {
        auto t0 = Clock::now();
        for (int i = 0; i < inner; ++i) fwd_bwd_once();
        return bench::seconds_since(t0);
      },
      // 1: forward only, recording the graph (then freeing it)
      [&] {
        auto t0 = Clock::now();
        for (int i = 0; i < inner; ++i) {
          xg::Tensor y = chain(x0, w, b);
          bench::do_not_optimize(y.impl().get());
        }
        return bench::seconds_since(t0);
      },
      // 2: forward only under NoGradGuard (dispatch + allocation + kernel, no tape)
      [&] {
        xg::NoGradGuard no_grad;
        auto t0 = Clock::now();
        for (int i = 0; i < inner; ++i) {
          xg::Tensor y = chain(x0, w, b);
          bench::do_not_optimize(y.impl().get());
        }
        return bench::seconds_since(t0);
      },
      // 3: hand-written float loops, forward + backward
      [&] {
        auto t0 = Clock::now();
        for (int i = 0; i < inner; ++i) {
          raw.run(x0.data_ptr<float>(), w.data_ptr<float>(), b.data_ptr<float>());
          bench::clobber_memory();
        }
        return bench::seconds_since(t0);
      },
  };
  auto samples = alternate(contenders, opt.warmup, reps);
  const double to_us_per_op = 1e6 / (inner * kChainOps);
  auto per_op = [&](const std::vector<double>& s) {
    std::vector<double> v;
    for (double t : s) v.push_back(t * to_us_per_op);
    return stats_of(v);
  };
  Stats full = per_op(samples[0]), fwd = per_op(samples[1]), nograd = per_op(samples[2]), rawst = per_op(samples[3]);
  std::vector<double> bwd_share;
  for (size_t r = 0; r < samples[0].size(); ++r) bwd_share.push_back((samples[0][r] - samples[1][r]) * to_us_per_op);
  Stats bwd = stats_of(bwd_share);
  const double target = 1.0;
  std::printf("   %d repetitions x %d chains (%d ops each), alternating:\n", reps, inner, kChainOps);
  std::printf("   %-38s median %8.3f us/op   min %8.3f us/op\n", "xgrad forward+backward", full.median, full.min);
  std::printf("   %-38s median %8.3f us/op   min %8.3f us/op\n", "  xgrad forward only (records, frees)", fwd.median, fwd.min);
  std::printf("   %-38s median %8.3f us/op\n", "  xgrad backward (fwd+bwd - fwd)", bwd.median);
  std::printf("   %-38s median %8.3f us/op   min %8.3f us/op\n", "  xgrad forward (NoGradGuard)", nograd.median, nograd.min);
  std::printf("   %-38s median %8.4f us/op   min %8.4f us/op\n", "hand-written loops forward+backward", rawst.median, rawst.min);
  std::printf("   process single-threaded: %s\n", bench::single_threaded_string());
  std::printf("   ratio xgrad / target (1 us/op): %.2f   xgrad / hand-written: %.0fx   -> %s\n\n", full.median / target,
              full.median / rawst.median, bench::pass_fail(full.median <= target));
  bench::result_line(kBinary, "overhead", "us_per_op_fwd_bwd", full.median, full.min, "us");
  bench::result_line(kBinary, "overhead", "us_per_op_fwd_recording", fwd.median, fwd.min, "us");
  bench::result_line(kBinary, "overhead", "us_per_op_bwd", bwd.median, full.min - fwd.min, "us");
  bench::result_line(kBinary, "overhead", "us_per_op_fwd_nograd", nograd.median, nograd.min, "us");
  bench::result_line(kBinary, "overhead", "us_per_op_handwritten", rawst.median, rawst.min, "us");
  std::printf("\n");
  g_summary.push_back({"overhead", "us/op fwd+bwd [16] f32", fmt_num(full.median), "1.000 (target)",
                       fmt_num(full.median / target, 2), "<= 1 us/op", bench::pass_fail(full.median <= target)});
}

// =====================================================================================================
// b. tanh_bias: y = tanh(x + bias), [64, 1000] + [1000], forward only
// =====================================================================================================
void bench_tanh_bias(const Options& opt) {
  constexpr int64_t R = 64, C = 1000;
  std::printf("-- tanh_bias: y = tanh(x + bias), x [%lld, %lld] f32, bias [%lld], forward only (NoGradGuard) --\n",
              (long long)R, (long long)C, (long long)C);
  std::printf("   references on the same input buffers: plain std::tanh loop (-O3 -march=native), the same loop\n"
              "   with -ffast-math (libmvec vectorised), xsimd::tanh loop (arch %s); baseline = fastest\n",
              bench::xsimd_arch_name());
  xg::manual_seed(2);
  xg::Tensor x = xg::randn({R, C});
  xg::Tensor bias = xg::randn({C});
  const float* px = x.data_ptr<float>();
  const float* pb = bias.data_ptr<float>();
  bench::AlignedBuffer y_plain(R * C), y_fast(R * C), y_xsimd(R * C);

  xg::NoGradGuard no_grad;
  xg::Tensor y_xgrad = xg::tanh(xg::add(x, bias));
  bench::tanh_bias_plain(px, pb, y_plain.data, R, C);
  bench::tanh_bias_plain_fastmath(px, pb, y_fast.data, R, C);
  bench::tanh_bias_xsimd(px, pb, y_xsimd.data, R, C);
  std::printf("   check: max |xgrad - plain| %.2e, |fast-math - plain| %.2e, |xsimd - plain| %.2e\n",
              bench::max_abs_diff(y_xgrad.data_ptr<float>(), y_plain.data, R * C),
              bench::max_abs_diff(y_fast.data, y_plain.data, R * C), bench::max_abs_diff(y_xsimd.data, y_plain.data, R * C));
  y_xgrad = xg::Tensor();
  if (opt.profile > 0) {
    bench::profile_loop(opt, "tanh_bias: xgrad tanh(add(x, bias))", [&] {
      xg::Tensor y = xg::tanh(xg::add(x, bias));
      bench::do_not_optimize(y.impl().get());
    });
    return;
  }

  const int inner = 10;
  const int reps = bench::reps_for(opt, 60);
  auto timed = [inner](auto&& body) {
    return [inner, body]() mutable {
      auto t0 = Clock::now();
      for (int i = 0; i < inner; ++i) {
        body();
        bench::clobber_memory();
      }
      return bench::seconds_since(t0) / inner;
    };
  };
  std::vector<std::function<double()>> contenders = {
      timed([&] {
        xg::Tensor y = xg::tanh(xg::add(x, bias));
        bench::do_not_optimize(y.impl().get());
      }),
      timed([&] { bench::tanh_bias_plain(px, pb, y_plain.data, R, C); }),
      timed([&] { bench::tanh_bias_plain_fastmath(px, pb, y_fast.data, R, C); }),
      timed([&] { bench::tanh_bias_xsimd(px, pb, y_xsimd.data, R, C); }),
      // breakdown of the xgrad expression
      timed([&] {
        xg::Tensor y = xg::add(x, bias);
        bench::do_not_optimize(y.impl().get());
      }),
      timed([&] {
        xg::Tensor y = xg::tanh(x);
        bench::do_not_optimize(y.impl().get());
      }),
  };
  const char* names[] = {"xgrad tanh(add(x, bias))", "plain std::tanh loop", "plain loop, -ffast-math (libmvec)",
                         "xsimd::tanh loop", "  xgrad add(x, bias) alone", "  xgrad tanh(x) alone"};
  auto samples = alternate(contenders, opt.warmup, reps);
  std::vector<Stats> st;
  for (auto& s : samples) {
    std::vector<double> us;
    for (double t : s) us.push_back(t * 1e6);
    st.push_back(stats_of(us));
  }
  // Baseline: the fastest reference (by median).
  size_t best = 1;
  for (size_t k = 2; k <= 3; ++k)
    if (st[k].median < st[best].median) best = k;
  // The brief's baseline: fastest of the plain (strict) loop and the xsimd loop.
  size_t best2 = st[1].median < st[3].median ? 1 : 3;
  Stats ratio = stats_of(paired_ratios(samples[0], samples[best]));
  Stats ratio2 = stats_of(paired_ratios(samples[0], samples[best2]));
  std::printf("   %d repetitions x %d calls, alternating:\n", reps, inner);
  for (size_t k = 0; k < st.size(); ++k)
    std::printf("   %-38s median %9.2f us   min %9.2f us%s\n", names[k], st[k].median, st[k].min,
                k == best ? "   <- baseline" : "");
  for (size_t k = 1; k <= 3; ++k)
    std::printf("   ratio xgrad / %-33s %.2f (paired median)\n", names[k],
                stats_of(paired_ratios(samples[0], samples[k])).median);
  const double target = 1.5;
  std::printf("   ratio xgrad / fastest reference (%s): median %.2f  min %.2f -> %s\n", names[best], ratio.median,
              ratio.min, bench::pass_fail(ratio.median <= target));
  if (best2 != best)
    std::printf("   ratio xgrad / fastest of {plain, xsimd} (%s): median %.2f\n", names[best2], ratio2.median);
  std::printf("\n");
  bench::result_line(kBinary, "tanh_bias", "us_xgrad", st[0].median, st[0].min, "us");
  bench::result_line(kBinary, "tanh_bias", "us_plain", st[1].median, st[1].min, "us");
  bench::result_line(kBinary, "tanh_bias", "us_plain_fastmath", st[2].median, st[2].min, "us");
  bench::result_line(kBinary, "tanh_bias", "us_xsimd", st[3].median, st[3].min, "us");
  bench::result_line(kBinary, "tanh_bias", "us_xgrad_add_only", st[4].median, st[4].min, "us");
  bench::result_line(kBinary, "tanh_bias", "us_xgrad_tanh_only", st[5].median, st[5].min, "us");
  bench::result_line(kBinary, "tanh_bias", "ratio_xgrad_over_fastest_ref", ratio.median, ratio.min, "x");
  bench::result_line(kBinary, "tanh_bias", "ratio_xgrad_over_best_plain_or_xsimd", ratio2.median, ratio2.min, "x");
  std::printf("\n");
  g_summary.push_back({"tanh_bias", "us/call [64,1000]+[1000]", fmt_num(st[0].median, 1),
                       fmt_num(st[best].median, 1) + " (" + (best == 1 ? "plain" : best == 2 ? "fast-math" : "xsimd") + ")",
                       fmt_num(ratio.median, 2), "<= 1.5", bench::pass_fail(ratio.median <= target)});
}

// =====================================================================================================
// c. matmul: 1024^2 f32, xg::matmul vs cblas_sgemm on the same buffers
// =====================================================================================================
void bench_matmul(const Options& opt) {
  constexpr int N = 1024;
  std::printf("-- matmul: [%d, %d] x [%d, %d] float32, xg::matmul vs cblas_sgemm on the same buffers --\n", N, N, N, N);
  std::printf("   OpenBLAS: %s; core %s; xgrad threads %d (OpenBLAS at 1 inside xgrad; the sgemm reference runs OpenBLAS at %d)\n",
              openblas_get_config(), openblas_get_corename(), xg::get_num_threads(), xg::get_num_threads());
  xg::manual_seed(3);
  xg::Tensor a = xg::randn({N, N});
  xg::Tensor b = xg::randn({N, N});
  const float* pa = a.data_ptr<float>();
  const float* pb = b.data_ptr<float>();
  bench::AlignedBuffer c(size_t(N) * N);
  xg::NoGradGuard no_grad;

  // The reference is OpenBLAS threading itself, with as many threads as xgrad's pool. xgrad keeps
  // OpenBLAS at one thread (it splits products over its own pool), so the reference switches OpenBLAS
  // to N threads around its own calls, outside the timed region.
  const int blas_threads = xg::get_num_threads();
  auto sgemm = [&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, N, N, 1.0f, pa, N, pb, N, 0.0f, c.data, N);
  };
  struct OpenBlasThreads {
    explicit OpenBlasThreads(int n) { openblas_set_num_threads(n); }
    ~OpenBlasThreads() { openblas_set_num_threads(1); }
  };
  {
    xg::Tensor y = xg::matmul(a, b);
    OpenBlasThreads reference(blas_threads);
    sgemm();
    std::printf("   check: max |xgrad - sgemm| = %.2e\n", bench::max_abs_diff(y.data_ptr<float>(), c.data, size_t(N) * N));
  }
  if (opt.profile > 0) {
    bench::profile_loop(opt, "matmul: xg::matmul 1024^2", [&] {
      xg::Tensor y = xg::matmul(a, b);
      bench::do_not_optimize(y.impl().get());
    });
    return;
  }
  const int reps = bench::reps_for(opt, 30);
  std::vector<std::function<double()>> contenders = {
      [&] {
        auto t0 = Clock::now();
        xg::Tensor y = xg::matmul(a, b);
        bench::do_not_optimize(y.impl().get());
        double t = bench::seconds_since(t0);
        return t;  // (the output's buffer goes back to the cache after the clock stopped)
      },
      [&] {
        OpenBlasThreads reference(blas_threads);
        auto t0 = Clock::now();
        sgemm();
        bench::clobber_memory();
        return bench::seconds_since(t0);
      },
  };
  auto samples = alternate(contenders, opt.warmup, reps);
  const double flop = 2.0 * N * N * N;
  auto gflops = [&](const std::vector<double>& s) {
    std::vector<double> v;
    for (double t : s) v.push_back(flop / t * 1e-9);
    return stats_of(v);  // median GFLOP/s; "min" column = lowest GFLOP/s
  };
  auto ms = [&](const std::vector<double>& s) {
    std::vector<double> v;
    for (double t : s) v.push_back(t * 1e3);
    return stats_of(v);
  };
  Stats gx = gflops(samples[0]), gs = gflops(samples[1]), tx = ms(samples[0]), ts = ms(samples[1]);
  Stats frac = stats_of(paired_ratios(samples[1], samples[0]));  // t_sgemm / t_xgrad = GFLOP/s ratio
  std::printf("   %d repetitions, alternating:\n", reps);
  std::printf("   %-20s median %8.3f ms (%7.1f GFLOP/s)   min %8.3f ms (%7.1f GFLOP/s)\n", "xgrad matmul", tx.median,
              flop / (tx.median * 1e-3) * 1e-9, tx.min, gx.max);
  std::printf("   %-20s median %8.3f ms (%7.1f GFLOP/s)   min %8.3f ms (%7.1f GFLOP/s)\n", "cblas_sgemm", ts.median,
              flop / (ts.median * 1e-3) * 1e-9, ts.min, gs.max);
  const double target = 0.90;
  std::printf("   fraction xgrad / sgemm (GFLOP/s, paired median): %.1f %%  (range %.1f .. %.1f %%) -> %s\n\n",
              100 * frac.median, 100 * frac.min, 100 * frac.max, bench::pass_fail(frac.median >= target));
  const std::string thr = std::to_string(xg::get_num_threads());
  bench::result_line(kBinary, "matmul", "gflops_xgrad", flop / (tx.median * 1e-3) * 1e-9, gx.max, "GFLOP/s");
  bench::result_line(kBinary, "matmul", "gflops_sgemm", flop / (ts.median * 1e-3) * 1e-9, gs.max, "GFLOP/s");
  bench::result_line(kBinary, "matmul", "fraction_xgrad_over_sgemm", frac.median, frac.max, "x");
  std::printf("\n");
  g_summary.push_back({"matmul", "GFLOP/s 1024^2 f32, " + thr + " thr",
                       fmt_num(flop / (tx.median * 1e-3) * 1e-9, 1),
                       fmt_num(flop / (ts.median * 1e-3) * 1e-9, 1) + " (sgemm)", fmt_num(100 * frac.median, 1) + " %",
                       ">= 90 %", bench::pass_fail(frac.median >= target)});
}

}  // namespace

int main(int argc, char** argv) {
  Options opt = bench::parse_options(argc, argv);
  bench::IdleThread idle_thread(opt.idle_thread);
  std::string extra = std::string("xsimd arch:           ") + bench::xsimd_arch_name() + "\n" +
                      "openblas:             " + openblas_get_config() + " (core " + openblas_get_corename() +
                      ", threads " + std::to_string(openblas_get_num_threads()) + ")\n";
  bench::print_banner(kBinary, extra);
  try {
    if (bench::selected(opt, "overhead")) bench_overhead(opt);
    if (bench::selected(opt, "tanh_bias")) bench_tanh_bias(opt);
    if (bench::selected(opt, "matmul")) bench_matmul(opt);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_core: error: %s\n", e.what());
    return 1;
  }
  if (opt.profile <= 0) bench::print_summary(kBinary, "xgrad");
  return 0;
}
