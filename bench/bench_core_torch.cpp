// bench_core_torch: bench_core's cases written against libtorch, so xgrad's figures can be compared
// with PyTorch's C++ frontend on the same machine and in the same scripts/bench.sh run.
//
//   overhead   the same 100-op chain on a 16-float tensor, forward + backward, µs per op.
//   tanh_bias  torch::tanh(x + bias), [64, 1000] + [1000], forward only, against the same hand-written
//              reference loops as bench_core (linked from bench_reference*.cpp).
//   matmul     1024^2 f32 torch::matmul against cblas_sgemm on the same buffers.
//
// at::set_num_threads(1) throughout (xgrad is single-threaded; this is the per-op comparison).
// torch::matmul goes to the BLAS libtorch links (Debian: libblas.so.3 = OpenBLAS), whose thread
// count follows OPENBLAS_NUM_THREADS like cblas_sgemm's.
#include <cblas.h>

#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "bench_common.hpp"

namespace {

using bench::alternate;
using bench::Clock;
using bench::fmt_num;
using bench::g_summary;
using bench::Options;
using bench::paired_ratios;
using bench::Stats;
using bench::stats_of;

constexpr const char* kBinary = "bench_core_torch";
constexpr int kChainOps = 100;
constexpr int kChainN = 16;

/// Identical to bench_core's chain: 20 x (x*w, x+b, tanh, x*1.0001, x+0.001).
torch::Tensor chain(torch::Tensor x, const torch::Tensor& w, const torch::Tensor& b) {
  for (int i = 0; i < kChainOps / 5; ++i) {
    x = torch::mul(x, w);
    x = torch::add(x, b);
    x = torch::tanh(x);
    x = torch::mul(x, 1.0001);
    x = torch::add(x, 0.001);
  }
  return x;
}

void bench_overhead(const Options& opt) {
  std::printf("-- overhead: chain of %d elementwise ops on a [%d] float32 tensor, forward + backward (libtorch) --\n",
              kChainOps, kChainN);
  std::printf("   ops: 20 x (mul(x, w), add(x, b), tanh(x), mul(x, 1.0001), add(x, 0.001)); then sum().backward()\n");
  torch::manual_seed(1);
  torch::Tensor x0 = torch::randn({kChainN}).requires_grad_();
  torch::Tensor w = (torch::randn({kChainN}) * 0.01 + 1.0).requires_grad_();
  torch::Tensor b = (torch::randn({kChainN}) * 0.01).requires_grad_();

  auto fwd_bwd_once = [&] {
    x0.mutable_grad() = torch::Tensor();
    w.mutable_grad() = torch::Tensor();
    b.mutable_grad() = torch::Tensor();
    torch::Tensor y = chain(x0, w, b);
    y.sum().backward();
  };

  {
    for (int i = 0; i < 3; ++i) fwd_bwd_once();
    uint64_t n0 = bench::new_calls();
    fwd_bwd_once();
    uint64_t n1 = bench::new_calls();
    torch::Tensor keep;
    uint64_t f0 = bench::new_calls();
    keep = chain(x0, w, b);
    uint64_t f1 = bench::new_calls();
    keep = torch::Tensor();
    uint64_t g0 = bench::new_calls();
    {
      torch::NoGradGuard no_grad;
      keep = chain(x0, w, b);
    }
    uint64_t g1 = bench::new_calls();
    keep = torch::Tensor();
    std::printf("   allocations per op: operator new %.2f (forward recording %.2f, no-grad forward %.2f); tensor\n"
                "   buffers come from c10's CPU allocator (posix_memalign, not counted)\n",
                double(n1 - n0) / kChainOps, double(f1 - f0) / kChainOps, double(g1 - g0) / kChainOps);
  }

  const int inner = 20;
  const int reps = bench::reps_for(opt, 60);
  std::vector<std::function<double()>> contenders = {
      [&] {
        auto t0 = Clock::now();
        for (int i = 0; i < inner; ++i) fwd_bwd_once();
        return bench::seconds_since(t0);
      },
      [&] {
        auto t0 = Clock::now();
        for (int i = 0; i < inner; ++i) {
          torch::Tensor y = chain(x0, w, b);
          bench::do_not_optimize(y.unsafeGetTensorImpl());
        }
        return bench::seconds_since(t0);
      },
      [&] {
        torch::NoGradGuard no_grad;
        auto t0 = Clock::now();
        for (int i = 0; i < inner; ++i) {
          torch::Tensor y = chain(x0, w, b);
          bench::do_not_optimize(y.unsafeGetTensorImpl());
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
  Stats full = per_op(samples[0]), fwd = per_op(samples[1]), nograd = per_op(samples[2]);
  std::vector<double> bwd_share;
  for (size_t r = 0; r < samples[0].size(); ++r) bwd_share.push_back((samples[0][r] - samples[1][r]) * to_us_per_op);
  Stats bwd = stats_of(bwd_share);
  const double target = 1.0;
  std::printf("   %d repetitions x %d chains (%d ops each), alternating:\n", reps, inner, kChainOps);
  std::printf("   %-38s median %8.3f us/op   min %8.3f us/op\n", "libtorch forward+backward", full.median, full.min);
  std::printf("   %-38s median %8.3f us/op   min %8.3f us/op\n", "  libtorch fwd only (records, frees)", fwd.median, fwd.min);
  std::printf("   %-38s median %8.3f us/op\n", "  libtorch backward (fwd+bwd - fwd)", bwd.median);
  std::printf("   %-38s median %8.3f us/op   min %8.3f us/op\n", "  libtorch forward (NoGradGuard)", nograd.median,
              nograd.min);
  std::printf("   ratio libtorch / 1 us/op: %.2f\n\n", full.median / target);
  bench::result_line(kBinary, "overhead", "us_per_op_fwd_bwd", full.median, full.min, "us");
  bench::result_line(kBinary, "overhead", "us_per_op_fwd_recording", fwd.median, fwd.min, "us");
  bench::result_line(kBinary, "overhead", "us_per_op_bwd", bwd.median, full.min - fwd.min, "us");
  bench::result_line(kBinary, "overhead", "us_per_op_fwd_nograd", nograd.median, nograd.min, "us");
  std::printf("\n");
  g_summary.push_back({"overhead", "us/op fwd+bwd [16] f32", fmt_num(full.median), "1.000 (xgrad target)",
                       fmt_num(full.median / target, 2), "-", "info"});
}

void bench_tanh_bias(const Options& opt) {
  constexpr int64_t R = 64, C = 1000;
  std::printf("-- tanh_bias: y = torch::tanh(x + bias), x [%lld, %lld] f32, bias [%lld], forward only --\n", (long long)R,
              (long long)C, (long long)C);
  torch::manual_seed(2);
  torch::Tensor x = torch::randn({R, C});
  torch::Tensor bias = torch::randn({C});
  const float* px = x.data_ptr<float>();
  const float* pb = bias.data_ptr<float>();
  bench::AlignedBuffer y_plain(R * C), y_fast(R * C), y_xsimd(R * C);
  torch::NoGradGuard no_grad;
  {
    torch::Tensor y = torch::tanh(x + bias);
    bench::tanh_bias_plain(px, pb, y_plain.data, R, C);
    std::printf("   check: max |libtorch - plain| %.2e\n", bench::max_abs_diff(y.data_ptr<float>(), y_plain.data, R * C));
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
        torch::Tensor y = torch::tanh(x + bias);
        bench::do_not_optimize(y.unsafeGetTensorImpl());
      }),
      timed([&] { bench::tanh_bias_plain(px, pb, y_plain.data, R, C); }),
      timed([&] { bench::tanh_bias_plain_fastmath(px, pb, y_fast.data, R, C); }),
      timed([&] { bench::tanh_bias_xsimd(px, pb, y_xsimd.data, R, C); }),
  };
  const char* names[] = {"libtorch tanh(x + bias)", "plain std::tanh loop", "plain loop, -ffast-math (libmvec)",
                         "xsimd::tanh loop"};
  auto samples = alternate(contenders, opt.warmup, reps);
  std::vector<Stats> st;
  for (auto& s : samples) {
    std::vector<double> us;
    for (double t : s) us.push_back(t * 1e6);
    st.push_back(stats_of(us));
  }
  size_t best = 1;
  for (size_t k = 2; k <= 3; ++k)
    if (st[k].median < st[best].median) best = k;
  Stats ratio = stats_of(paired_ratios(samples[0], samples[best]));
  std::printf("   %d repetitions x %d calls, alternating:\n", reps, inner);
  for (size_t k = 0; k < st.size(); ++k)
    std::printf("   %-38s median %9.2f us   min %9.2f us%s\n", names[k], st[k].median, st[k].min,
                k == best ? "   <- baseline" : "");
  std::printf("   ratio libtorch / fastest reference (%s): median %.2f  min %.2f\n\n", names[best], ratio.median, ratio.min);
  bench::result_line(kBinary, "tanh_bias", "us_torch", st[0].median, st[0].min, "us");
  bench::result_line(kBinary, "tanh_bias", "us_plain", st[1].median, st[1].min, "us");
  bench::result_line(kBinary, "tanh_bias", "us_plain_fastmath", st[2].median, st[2].min, "us");
  bench::result_line(kBinary, "tanh_bias", "us_xsimd", st[3].median, st[3].min, "us");
  bench::result_line(kBinary, "tanh_bias", "ratio_torch_over_fastest_ref", ratio.median, ratio.min, "x");
  std::printf("\n");
  g_summary.push_back({"tanh_bias", "us/call [64,1000]+[1000]", fmt_num(st[0].median, 1),
                       fmt_num(st[best].median, 1) + (best == 1 ? " (plain)" : best == 2 ? " (fast-math)" : " (xsimd)"),
                       fmt_num(ratio.median, 2), "-", "info"});
}

void bench_matmul(const Options& opt) {
  constexpr int N = 1024;
  std::printf("-- matmul: [%d, %d] x [%d, %d] float32, torch::matmul vs cblas_sgemm on the same buffers --\n", N, N, N, N);
  torch::manual_seed(3);
  torch::Tensor a = torch::randn({N, N});
  torch::Tensor b = torch::randn({N, N});
  const float* pa = a.data_ptr<float>();
  const float* pb = b.data_ptr<float>();
  bench::AlignedBuffer c(size_t(N) * N);
  torch::NoGradGuard no_grad;
  auto sgemm = [&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, N, N, 1.0f, pa, N, pb, N, 0.0f, c.data, N);
  };
  {
    torch::Tensor y = torch::matmul(a, b);
    sgemm();
    std::printf("   check: max |libtorch - sgemm| = %.2e\n", bench::max_abs_diff(y.data_ptr<float>(), c.data, size_t(N) * N));
  }
  const int reps = bench::reps_for(opt, 30);
  std::vector<std::function<double()>> contenders = {
      [&] {
        auto t0 = Clock::now();
        torch::Tensor y = torch::matmul(a, b);
        bench::do_not_optimize(y.unsafeGetTensorImpl());
        return bench::seconds_since(t0);
      },
      [&] {
        auto t0 = Clock::now();
        sgemm();
        bench::clobber_memory();
        return bench::seconds_since(t0);
      },
  };
  auto samples = alternate(contenders, opt.warmup, reps);
  const double flop = 2.0 * N * N * N;
  auto ms = [&](const std::vector<double>& s) {
    std::vector<double> v;
    for (double t : s) v.push_back(t * 1e3);
    return stats_of(v);
  };
  Stats tt = ms(samples[0]), ts = ms(samples[1]);
  Stats frac = stats_of(paired_ratios(samples[1], samples[0]));
  auto gf = [&](double t_ms) { return flop / (t_ms * 1e-3) * 1e-9; };
  std::printf("   %d repetitions, alternating:\n", reps);
  std::printf("   %-20s median %8.3f ms (%7.1f GFLOP/s)   min %8.3f ms (%7.1f GFLOP/s)\n", "torch::matmul", tt.median,
              gf(tt.median), tt.min, gf(tt.min));
  std::printf("   %-20s median %8.3f ms (%7.1f GFLOP/s)   min %8.3f ms (%7.1f GFLOP/s)\n", "cblas_sgemm", ts.median,
              gf(ts.median), ts.min, gf(ts.min));
  std::printf("   fraction libtorch / sgemm (GFLOP/s, paired median): %.1f %%  (range %.1f .. %.1f %%)\n\n",
              100 * frac.median, 100 * frac.min, 100 * frac.max);
  bench::result_line(kBinary, "matmul", "gflops_torch", gf(tt.median), gf(tt.min), "GFLOP/s");
  bench::result_line(kBinary, "matmul", "gflops_sgemm", gf(ts.median), gf(ts.min), "GFLOP/s");
  bench::result_line(kBinary, "matmul", "fraction_torch_over_sgemm", frac.median, frac.max, "x");
  std::printf("\n");
  g_summary.push_back({"matmul", "GFLOP/s 1024^2 f32, " + std::to_string(openblas_get_num_threads()) + " thr",
                       fmt_num(gf(tt.median), 1), fmt_num(gf(ts.median), 1) + " (sgemm)",
                       fmt_num(100 * frac.median, 1) + " %", "-", "info"});
}

}  // namespace

int main(int argc, char** argv) {
  Options opt = bench::parse_options(argc, argv);
  bench::IdleThread idle_thread(opt.idle_thread);
  at::set_num_threads(1);
  // "CPU capability usage: AVX2" from the build configuration string (which ATen kernels run).
  std::string capability = "?";
  {
    const std::string config = at::show_config();
    const std::string key = "CPU capability usage: ";
    auto pos = config.find(key);
    if (pos != std::string::npos) capability = config.substr(pos + key.size(), config.find('\n', pos) - pos - key.size());
  }
  std::string extra = std::string("libtorch:             ") + TORCH_VERSION + " (at::get_num_threads() = " +
                      std::to_string(at::get_num_threads()) + ", ATen CPU capability " + capability + ")\n" + "xsimd arch (refs):    " +
                      bench::xsimd_arch_name() + "\n" + "openblas (cblas):     " + openblas_get_config() + " (core " +
                      openblas_get_corename() + ", threads " + std::to_string(openblas_get_num_threads()) + ")\n";
  bench::print_banner(kBinary, extra);
  try {
    if (bench::selected(opt, "overhead")) bench_overhead(opt);
    if (bench::selected(opt, "tanh_bias")) bench_tanh_bias(opt);
    if (bench::selected(opt, "matmul")) bench_matmul(opt);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_core_torch: error: %s\n", e.what());
    return 1;
  }
  bench::print_summary(kBinary, "libtorch");
  return 0;
}
