// Data-parallel training throughput: training steps per second of the Fashion-MNIST CNN of
// examples/fashion_mnist_ddp.cpp with 1 and 2 MPI processes (one OpenBLAS thread each), and the
// scaling efficiency. See bench/README-distributed.md.
//
// The program is its own driver: run without --worker it launches itself under mpiexec once per
// configuration and repetition, alternating the configurations so that a slow spell of the shared
// machine hits all of them, and reports medians and paired ratios:
//
//   1 plain   one process, plain loss.backward() (no xg::distributed at all): the baseline
//   1 ddp     one process through DistributedDataParallel (its bookkeeping cost)
//   2 plain   two independent processes, no gradient exchange: what this machine allows at best
//   2 ddp     two processes, buckets all-reduced during backward
//   2 sync    two processes, the synchronous fallback (one all-reduce after backward)
//
// The batch per process is fixed (weak scaling, as data-parallel training is used): a step of N
// processes trains N times the examples, so scaling efficiency = steps/s(N) / steps/s(1 plain), and
// examples/s(N) = N * batch * steps/s(N).
//
//   build/bench/bench_distributed [--repetitions 5] [--steps 30] [--warmup 5] [--batch-size 64]
//                                 [--bucket-cap-mb 25] [--mpiexec /usr/bin/mpiexec]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <unistd.h>

#include <xgrad/xgrad.hpp>

#ifndef XGRAD_HAS_MPI
int main() {
  std::fprintf(stderr, "bench_distributed: xgrad was built without MPI\n");
  return 1;
}
#else

#ifndef XGRAD_MPIEXEC
#define XGRAD_MPIEXEC "mpiexec"
#endif

namespace {

namespace dist = xg::distributed;
namespace F = xg::nn::functional;
using Clock = std::chrono::steady_clock;

/// The CNN of examples/fashion_mnist_ddp.cpp: [N, 1, 28, 28] -> [N, 10], 215 k parameters.
class FashionCNNImpl : public xg::nn::Module {
 public:
  FashionCNNImpl() : xg::nn::Module("FashionCNN") {
    conv1 = register_module("conv1", xg::nn::Conv2d(xg::nn::Conv2dOptions(1, 16, 5).padding(2)));
    conv2 = register_module("conv2", xg::nn::Conv2d(xg::nn::Conv2dOptions(16, 32, 5).padding(2)));
    fc1 = register_module("fc1", xg::nn::Linear(32 * 7 * 7, 128));
    fc2 = register_module("fc2", xg::nn::Linear(128, 10));
  }
  xg::Tensor forward(const xg::Tensor& x) {
    xg::Tensor h = F::max_pool2d(xg::relu(conv1(x)), 2);
    h = F::max_pool2d(xg::relu(conv2(h)), 2);
    return fc2(xg::relu(fc1(h.flatten(1))));
  }
  xg::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  xg::nn::Linear fc1{nullptr}, fc2{nullptr};
};
XG_MODULE(FashionCNN);

struct Settings {
  int repetitions = 5;
  int steps = 30;
  int warmup = 5;
  int batch_size = 64;
  double bucket_cap_mb = 25;
  std::string mpiexec = XGRAD_MPIEXEC;
  std::string mode = "ddp";  // worker: plain | ddp | sync
};

[[noreturn]] void usage(const char* message) {
  std::fprintf(stderr,
               "bench_distributed: %s\nusage: bench_distributed [--repetitions N] [--steps N] [--warmup N] "
               "[--batch-size N] [--bucket-cap-mb X] [--mpiexec PATH]\n",
               message);
  std::exit(2);
}

Settings parse(int argc, char** argv, bool& worker) {
  Settings s;
  worker = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--worker") {
      worker = true;
      continue;
    }
    if (i + 1 >= argc) usage(("missing value after " + arg).c_str());
    const std::string value = argv[++i];
    try {
      if (arg == "--repetitions") s.repetitions = std::stoi(value);
      else if (arg == "--steps") s.steps = std::stoi(value);
      else if (arg == "--warmup") s.warmup = std::stoi(value);
      else if (arg == "--batch-size") s.batch_size = std::stoi(value);
      else if (arg == "--bucket-cap-mb") s.bucket_cap_mb = std::stod(value);
      else if (arg == "--mpiexec") s.mpiexec = value;
      else if (arg == "--mode") s.mode = value;
      else usage(("unknown option " + arg).c_str());
    } catch (const std::logic_error&) {
      usage(("bad value '" + value + "' for " + arg).c_str());
    }
  }
  if (s.repetitions < 1 || s.steps < 1 || s.warmup < 0 || s.batch_size < 1 || !(s.bucket_cap_mb > 0))
    usage("counts must be positive");
  if (s.mode != "plain" && s.mode != "ddp" && s.mode != "sync") usage("--mode must be plain, ddp or sync");
  return s;
}

// ---- worker: one configuration, under mpiexec ------------------------------------------------------
int run_worker(const Settings& s) {
  const int rank = dist::get_rank(), world = dist::get_world_size();
  // Synthetic batches (the compute of a step does not depend on the pixel values); different per rank.
  xg::manual_seed(1000 + static_cast<uint64_t>(rank));
  std::vector<xg::Tensor> images, labels;
  for (int i = 0; i < 4; ++i) {
    images.push_back(xg::rand({s.batch_size, 1, 28, 28}));
    labels.push_back(xg::randint(0, 10, {s.batch_size}));
  }
  xg::manual_seed(0);
  FashionCNN model;
  std::unique_ptr<dist::DistributedDataParallel> ddp;
  if (s.mode != "plain")
    ddp = std::make_unique<dist::DistributedDataParallel>(
        model, dist::DistributedDataParallelOptions().bucket_cap_mb(s.bucket_cap_mb).overlap_communication(s.mode == "ddp"));
  xg::optim::SGD optimizer(model->parameters(), xg::optim::SGDOptions(0.01).momentum(0.9));

  double waited = 0, in_backward = 0;
  auto step = [&](int i, bool timed) {
    optimizer.zero_grad();
    xg::Tensor loss = F::cross_entropy(model->forward(images[i % 4]), labels[i % 4]);
    if (ddp) {
      ddp->backward(loss);
      if (timed) {
        waited += ddp->last_stats().finalize_wait_seconds;
        in_backward += static_cast<double>(ddp->last_stats().buckets_launched_in_backward);
      }
    } else {
      loss.backward();
    }
    optimizer.step();
  };
  for (int i = 0; i < s.warmup; ++i) step(i, false);
  dist::barrier();
  const auto start = Clock::now();
  for (int i = 0; i < s.steps; ++i) step(i, true);
  dist::barrier();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  // The cost of communication alone: a blocking all-reduce of all gradients at once, the ranks
  // lined up by a barrier first (so it excludes waiting for a slower rank).
  xg::Tensor flat = xg::zeros({model->num_parameters()});
  std::vector<double> allreduce_ms;
  for (int i = 0; i < 20; ++i) {
    dist::barrier();
    const auto begin = Clock::now();
    dist::all_reduce(flat);
    allreduce_ms.push_back(1e3 * std::chrono::duration<double>(Clock::now() - begin).count());
  }
  std::sort(allreduce_ms.begin(), allreduce_ms.end());
  if (rank == 0)
    std::printf("RESULT world=%d mode=%s steps_per_second=%.4f exposed_comm_ms=%.4f allreduce_ms=%.4f buckets=%lld "
                "in_backward=%.2f\n",
                world, s.mode.c_str(), s.steps / seconds, 1e3 * waited / s.steps, allreduce_ms[allreduce_ms.size() / 2],
                static_cast<long long>(ddp ? ddp->num_buckets() : 0), in_backward / s.steps);
  return 0;
}

// ---- driver ------------------------------------------------------------------------------------------
struct Config {
  int processes;
  std::string mode;
  std::string label() const { return std::to_string(processes) + " " + mode; }
};

struct Result {
  double steps_per_second = 0, exposed_comm_ms = 0, allreduce_ms = 0;
};

std::string self_path() {
  std::vector<char> buffer(4096);
  const ssize_t length = readlink("/proc/self/exe", buffer.data(), buffer.size() - 1);
  if (length <= 0) usage("cannot find my own executable (/proc/self/exe)");
  return std::string(buffer.data(), static_cast<size_t>(length));
}

bool is_open_mpi(const std::string& mpiexec) {
  FILE* pipe = popen((mpiexec + " --version 2>&1").c_str(), "r");
  if (!pipe) return false;
  std::string text;
  char chunk[256];
  while (fgets(chunk, sizeof chunk, pipe)) text += chunk;
  pclose(pipe);
  return text.find("Open MPI") != std::string::npos || text.find("OpenRTE") != std::string::npos;
}

Result launch(const Settings& s, const Config& config, bool open_mpi) {
  std::string command = s.mpiexec + " -n " + std::to_string(config.processes);
  if (open_mpi) command += " --oversubscribe";
  command += " " + self_path() + " --worker --mode " + config.mode + " --steps " + std::to_string(s.steps) +
             " --warmup " + std::to_string(s.warmup) + " --batch-size " + std::to_string(s.batch_size) +
             " --bucket-cap-mb " + std::to_string(s.bucket_cap_mb) + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) usage(("cannot run " + command).c_str());
  std::string output;
  char chunk[512];
  while (fgets(chunk, sizeof chunk, pipe)) output += chunk;
  const int status = pclose(pipe);
  Result result;
  const size_t at = output.find("RESULT ");
  if (status != 0 || at == std::string::npos ||
      std::sscanf(output.c_str() + at, "RESULT world=%*d mode=%*s steps_per_second=%lf exposed_comm_ms=%lf allreduce_ms=%lf",
                  &result.steps_per_second, &result.exposed_comm_ms, &result.allreduce_ms) != 3) {
    std::fprintf(stderr, "bench_distributed: '%s' failed (status %d):\n%s\n", command.c_str(), status, output.c_str());
    std::exit(1);
  }
  return result;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

int run_driver(const Settings& s) {
  // One thread per process: the ranks share the cores; OpenBLAS threads would fight over them.
  setenv("OPENBLAS_NUM_THREADS", "1", 1);
  const bool open_mpi = is_open_mpi(s.mpiexec);
  if (open_mpi && geteuid() == 0) {
    // Open MPI refuses to start as root unless told; containers commonly run as root.
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 0);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 0);
  }
  const char* coretype = std::getenv("OPENBLAS_CORETYPE");
  double load[3] = {0, 0, 0};
  getloadavg(load, 3);
  std::printf("bench_distributed: Fashion-MNIST CNN, batch %d per process, %d timed steps after %d warm-up, "
              "%d repetitions\n  nproc=%ld, load average %.2f, OPENBLAS_NUM_THREADS=1, OPENBLAS_CORETYPE=%s, "
              "bucket_cap_mb=%g, launcher: %s%s\n",
              s.batch_size, s.steps, s.warmup, s.repetitions, sysconf(_SC_NPROCESSORS_ONLN), load[0],
              coretype ? coretype : "(unset)", s.bucket_cap_mb, s.mpiexec.c_str(), open_mpi ? " (Open MPI)" : "");
  std::fflush(stdout);

  const std::vector<Config> configs = {{1, "plain"}, {1, "ddp"}, {2, "plain"}, {2, "ddp"}, {2, "sync"}};
  std::map<std::string, std::vector<Result>> results;
  std::vector<double> efficiency, efficiency_sync, overlap_gain, machine_limit, ddp_vs_independent;
  for (int repetition = 0; repetition < s.repetitions; ++repetition) {
    std::map<std::string, Result> round;
    // Rotate the starting configuration every repetition.
    for (size_t k = 0; k < configs.size(); ++k) {
      const Config& config = configs[(k + static_cast<size_t>(repetition)) % configs.size()];
      Result result = launch(s, config, open_mpi);
      round[config.label()] = result;
      results[config.label()].push_back(result);
      std::printf("  repetition %d: %-8s %7.2f steps/s  finalize wait %.3f ms/step  all-reduce alone %.3f ms\n",
                  repetition + 1, config.label().c_str(), result.steps_per_second, result.exposed_comm_ms,
                  result.allreduce_ms);
      std::fflush(stdout);
    }
    const double base = round["1 plain"].steps_per_second;
    efficiency.push_back(round["2 ddp"].steps_per_second / base);
    efficiency_sync.push_back(round["2 sync"].steps_per_second / base);
    overlap_gain.push_back(round["2 ddp"].steps_per_second / round["2 sync"].steps_per_second);
    machine_limit.push_back(round["2 plain"].steps_per_second / base);
    ddp_vs_independent.push_back(round["2 ddp"].steps_per_second / round["2 plain"].steps_per_second);
  }

  // finalize wait: time finalize_backward() spent waiting, per step (communication not hidden behind
  // backward, plus waiting for the slower rank). all-reduce alone: all gradients in one blocking call.
  std::printf("\n%-9s %9s %9s %9s %11s %15s %17s\n", "config", "steps/s", "min", "max", "examples/s",
              "finalize ms/step", "all-reduce ms");
  for (const Config& config : configs) {
    std::vector<double> rate, comm, alone;
    for (const Result& r : results[config.label()]) {
      rate.push_back(r.steps_per_second);
      comm.push_back(r.exposed_comm_ms);
      alone.push_back(r.allreduce_ms);
    }
    const double m = median(rate);
    std::printf("%-9s %9.2f %9.2f %9.2f %11.0f %15.3f %17.3f\n", config.label().c_str(), m,
                *std::min_element(rate.begin(), rate.end()), *std::max_element(rate.begin(), rate.end()),
                m * config.processes * s.batch_size, median(comm), median(alone));
  }
  getloadavg(load, 3);
  std::printf("load average at the end: %.2f\n", load[0]);
  std::printf("\nscaling efficiency, 2 processes (overlapped) vs 1 plain: %.3f (median of per-repetition ratios; "
              "ideal 1.0 = 2x the examples/s)\n",
              median(efficiency));
  std::printf("scaling efficiency, 2 processes (synchronous) vs 1 plain: %.3f\n", median(efficiency_sync));
  std::printf("overlapped / synchronous steps/s, 2 processes:            %.3f\n", median(overlap_gain));
  std::printf("machine limit: 2 independent processes vs 1 (no communication): %.3f\n", median(machine_limit));
  std::printf("2 processes through DDP vs 2 independent processes:        %.3f (the cost of data parallelism "
              "itself)\n",
              median(ddp_vs_independent));
  std::printf("RESULT bench=distributed efficiency=%.4f efficiency_sync=%.4f overlap_gain=%.4f machine_limit=%.4f "
              "ddp_vs_independent=%.4f\n",
              median(efficiency), median(efficiency_sync), median(overlap_gain), median(machine_limit),
              median(ddp_vs_independent));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  bool worker = false;
  const Settings settings = parse(argc, argv, worker);
  if (!worker) return run_driver(settings);
  return dist::run(argc, argv, [&] { return run_worker(settings); });
}

#endif
