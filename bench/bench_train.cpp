// bench_train: the training cases of issue 6 (bench/README.md), xgrad against libtorch.
//
//   bench_train [--cases A_mlp,B_mlp_b64,...] [--threads N] [--reps N] [--no-torch] [--list]
//       the driver: for each case it starts one xgrad worker (this binary) and one libtorch worker
//       (bench_train_torch, next to this binary), each in its own process, lets each set up and warm
//       up in turn, then alternates them repetition by repetition (the first one alternates too) and
//       prints median and min per training step of each, the paired ratio xgrad/libtorch and each
//       process's peak resident memory.
//   bench_train --worker --case NAME --threads N      one xgrad worker (protocol: bench_train_common.hpp)
//   bench_train --profile SECONDS --case NAME         run the case alone, untimed (perf / callgrind)
//
// Threads: the driver sets OPENBLAS_NUM_THREADS=N and OMP_NUM_THREADS=N for both workers, and
// OMP_WAIT_POLICY=PASSIVE unless the environment sets it; the libtorch worker calls
// at::set_num_threads(N) and the xgrad worker xg::set_num_threads(N) (xgrad's own pool, with
// OpenBLAS kept single-threaded: xgrad/autograd/parallel.hpp).
#define BENCH_NO_NEW_COUNTER
#include <cblas.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <xgrad/xgrad.hpp>

#include <array>
#include <climits>
#include <map>
#include <memory>
#include <sstream>

#include "bench_common.hpp"
#include "bench_train_common.hpp"

namespace {

namespace F = xg::nn::functional;
using bench::Clock;
using bench::train::Case;
using bench::train::make_step_worker;
using bench::train::Worker;

// ---- xgrad models -------------------------------------------------------------------------------

/// Overwrites every parameter with the shared deterministic initial values (libtorch does the same).
void set_initial_parameters(const xg::nn::Module& model) {
  xg::NoGradGuard no_grad;
  size_t index = 0;
  for (const xg::Tensor& p : model.parameters()) {
    std::vector<float> values = bench::train::initial_parameter(index++, p.shape());
    std::copy(values.begin(), values.end(), p.data_ptr<float>());
  }
}

std::string parameter_signature(const xg::nn::Module& model) {
  int64_t tensors = 0, elements = 0;
  for (const xg::Tensor& p : model.parameters()) {
    ++tensors;
    elements += p.numel();
  }
  return "params=" + std::to_string(tensors) + "/" + std::to_string(elements);
}

xg::Tensor float_tensor(const std::vector<float>& values, const xg::Shape& shape) {
  xg::Tensor t = xg::empty(shape);
  std::copy(values.begin(), values.end(), t.data_ptr<float>());
  return t;
}

xg::Tensor label_tensor(const std::vector<int64_t>& labels) {
  xg::Tensor t = xg::empty({static_cast<int64_t>(labels.size())}, xg::TensorOptions(xg::kInt64));
  std::copy(labels.begin(), labels.end(), t.data_ptr<int64_t>());
  return t;
}

xg::nn::Sequential mlp_sigmoid() {
  return xg::nn::Sequential(xg::nn::Linear(784, 30), xg::nn::Sigmoid(), xg::nn::Linear(30, 10), xg::nn::Sigmoid());
}
xg::nn::Sequential mlp_relu() { return xg::nn::Sequential(xg::nn::Linear(784, 100), xg::nn::ReLU(), xg::nn::Linear(100, 10)); }
xg::nn::Sequential lenet() {
  return xg::nn::Sequential(xg::nn::Conv2d(xg::nn::Conv2dOptions(1, 32, 5).padding(2)), xg::nn::ReLU(), xg::nn::MaxPool2d(2),
                            xg::nn::Conv2d(xg::nn::Conv2dOptions(32, 64, 5).padding(2)), xg::nn::ReLU(), xg::nn::MaxPool2d(2),
                            xg::nn::Flatten(), xg::nn::Linear(3136, 1024), xg::nn::ReLU(), xg::nn::Dropout(0.5),
                            xg::nn::Linear(1024, 10));
}
xg::nn::Sequential small_cnn() {
  return xg::nn::Sequential(xg::nn::Conv2d(1, 8, 3), xg::nn::ReLU(), xg::nn::MaxPool2d(2), xg::nn::Conv2d(8, 16, 3), xg::nn::ReLU(),
                            xg::nn::MaxPool2d(2), xg::nn::Flatten(), xg::nn::Linear(400, 10));
}

struct LstmClassifierImpl : xg::nn::Module {
  LstmClassifierImpl() {
    lstm = register_module("lstm", xg::nn::LSTM(28, 128));
    head = register_module("head", xg::nn::Linear(128, 10));
  }
  /// x [T, N, 28] -> logits [N, 10] from the last hidden state.
  xg::Tensor forward(const xg::Tensor& x) {
    auto [output, state] = lstm->forward(x);
    (void)output;
    const xg::Tensor& h_n = std::get<0>(state);  // [1, N, 128]
    return head->forward(h_n.squeeze(0));
  }
  xg::nn::LSTM lstm{nullptr};
  xg::nn::Linear head{nullptr};
};
XG_MODULE(LstmClassifier);


Worker make_xgrad_worker(const Case& c) {
  xg::manual_seed(0);
  const std::string name = c.name;
  auto loss_value = std::make_shared<double>(0.0);

  if (name == "A_mlp" || name == "B_mlp_b64" || name == "B_mlp_b256") {
    const bool is_a = name == "A_mlp";
    const int64_t batch = is_a ? 10 : (name == "B_mlp_b64" ? 64 : 256);
    auto model = is_a ? mlp_sigmoid() : mlp_relu();
    set_initial_parameters(*model);
    std::shared_ptr<xg::optim::Optimizer> optimizer;
    if (is_a) optimizer = std::make_shared<xg::optim::SGD>(model->parameters(), xg::optim::SGDOptions(3.0));
    else optimizer = std::make_shared<xg::optim::SGD>(model->parameters(), xg::optim::SGDOptions(0.05).momentum(0.9));
    xg::Tensor x = float_tensor(bench::train::synthetic_inputs(batch * 784, 1), {batch, 784});
    std::vector<int64_t> labels = bench::train::synthetic_labels(batch, 2);
    xg::Tensor y = label_tensor(labels);
    xg::Tensor target = xg::one_hot(y, 10).to(xg::kFloat32);
    auto step = [=] {
      optimizer->zero_grad();
      xg::Tensor out = model->forward(x);
      xg::Tensor loss = is_a ? F::mse_loss(out, target) : F::cross_entropy(out, y);
      loss.backward();
      optimizer->step();
      *loss_value = loss.item<float>();
    };
    return make_step_worker(c, step, loss_value, parameter_signature(*model));
  }
  if (name == "C_lenet" || name == "C_small_cnn") {
    const int64_t batch = 64;
    auto model = name == "C_lenet" ? lenet() : small_cnn();
    set_initial_parameters(*model);
    auto optimizer = std::make_shared<xg::optim::Adam>(model->parameters(), xg::optim::AdamOptions(1e-3));
    xg::Tensor x = float_tensor(bench::train::synthetic_inputs(batch * 784, 1), {batch, 1, 28, 28});
    xg::Tensor y = label_tensor(bench::train::synthetic_labels(batch, 2));
    auto step = [=] {
      optimizer->zero_grad();
      xg::Tensor loss = F::cross_entropy(model->forward(x), y);
      loss.backward();
      optimizer->step();
      *loss_value = loss.item<float>();
    };
    return make_step_worker(c, step, loss_value, parameter_signature(*model));
  }
  if (name == "D_lstm") {
    const int64_t batch = 64, seq = 28;
    auto model = LstmClassifier();
    set_initial_parameters(*model);
    auto optimizer = std::make_shared<xg::optim::Adam>(model->parameters(), xg::optim::AdamOptions(1e-3));
    xg::Tensor x = float_tensor(bench::train::synthetic_inputs(seq * batch * 28, 1), {seq, batch, 28});
    xg::Tensor y = label_tensor(bench::train::synthetic_labels(batch, 2));
    auto step = [=] {
      optimizer->zero_grad();
      xg::Tensor loss = F::cross_entropy(model->forward(x), y);
      loss.backward();
      optimizer->step();
      *loss_value = loss.item<float>();
    };
    return make_step_worker(c, step, loss_value, parameter_signature(*model));
  }
  if (name == "F_batchnorm") {
    auto bn = xg::nn::BatchNorm2d(32);
    const xg::Shape shape{64, 32, 14, 14};
    const size_t n = 64 * 32 * 14 * 14;
    xg::Tensor x = float_tensor(bench::train::synthetic_inputs(n, 1), shape).requires_grad_();
    xg::Tensor grad_output = float_tensor(bench::train::uniform_values(n, -1.f, 1.f, 3), shape);
    auto step = [=]() mutable {
      bn->zero_grad();
      x.set_grad(xg::Tensor());
      xg::Tensor out = bn->forward(x);
      out.backward(grad_output);
      *loss_value = bn->weight.grad().data_ptr<float>()[0];  // a value to print: d(out . g)/d gamma_0
    };
    return make_step_worker(c, step, loss_value, parameter_signature(*bn));
  }
  if (name == "G_epoch_mlp" || name == "G_epoch_cnn") {
    const bool cnn = name == "G_epoch_cnn";
    auto load_start = Clock::now();
    auto dataset = std::make_shared<xg::data::MNIST>(bench::train::fashion_mnist_root(), xg::data::MNIST::Mode::kTrain);
    const double load_seconds = bench::seconds_since(load_start);
    // No background prefetch: both libraries assemble each batch on the training thread.
    auto loader = std::make_shared<xg::data::DataLoader>(
        dataset, xg::data::DataLoaderOptions(64).shuffle(true).seed(7).prefetch(false));
    auto model = cnn ? small_cnn() : mlp_relu();
    set_initial_parameters(*model);
    std::shared_ptr<xg::optim::Optimizer> optimizer;
    if (cnn) optimizer = std::make_shared<xg::optim::Adam>(model->parameters(), xg::optim::AdamOptions(1e-3));
    else optimizer = std::make_shared<xg::optim::SGD>(model->parameters(), xg::optim::SGDOptions(0.05).momentum(0.9));
    Worker w;
    w.run_rep = [=] {
      auto t0 = Clock::now();
      double total = 0;
      int64_t batches = 0;
      for (const xg::data::Example<>& batch : *loader) {
        optimizer->zero_grad();
        xg::Tensor input = cnn ? batch.data : batch.data.flatten(1);
        xg::Tensor loss = F::cross_entropy(model->forward(input), batch.target);
        loss.backward();
        optimizer->step();
        total += loss.item<float>();
        ++batches;
      }
      *loss_value = total / static_cast<double>(batches);
      return bench::seconds_since(t0);
    };
    w.last_loss = [loss_value] { return *loss_value; };
    w.ready_info = parameter_signature(*model) + " load_s=" + bench::fmt_num(load_seconds, 3);
    return w;
  }
  throw std::runtime_error("unknown case " + name);
}

int run_worker(const bench::train::WorkerArgs& args) {
  const Case* c = bench::train::find_case(args.case_name);
  if (!c) {
    std::fprintf(stderr, "bench_train: unknown case '%s'\n", args.case_name.c_str());
    return 2;
  }
  try {
    xg::set_num_threads(args.threads);  // as the libtorch worker calls at::set_num_threads
    Worker w = make_xgrad_worker(*c);
    if (args.profile > 0) return bench::train::profile_worker(w, *c, args.profile);
    return bench::train::serve(w, *c, args.warmup);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_train worker (%s): error: %s\n", c->name, e.what());
    return 1;
  }
}

// ---- driver -----------------------------------------------------------------------------------------

/// A worker process with pipes to its stdin and stdout.
class Child {
 public:
  Child(const std::string& program, const std::vector<std::string>& args) : program_(program) {
    int to_child[2], from_child[2];
    if (pipe(to_child) != 0 || pipe(from_child) != 0) throw std::runtime_error("pipe failed");
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      dup2(to_child[0], STDIN_FILENO);
      dup2(from_child[1], STDOUT_FILENO);
      close(to_child[0]);
      close(to_child[1]);
      close(from_child[0]);
      close(from_child[1]);
      std::vector<char*> argv;
      argv.push_back(const_cast<char*>(program.c_str()));
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execv(program.c_str(), argv.data());
      std::perror(("exec " + program).c_str());
      _exit(127);
    }
    close(to_child[0]);
    close(from_child[1]);
    in_ = fdopen(to_child[1], "w");
    out_ = fdopen(from_child[0], "r");
  }
  ~Child() {
    if (in_) std::fclose(in_);
    if (out_) std::fclose(out_);
    if (pid_ > 0) waitpid(pid_, nullptr, 0);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  void send(const char* line) {
    std::fprintf(in_, "%s\n", line);
    std::fflush(in_);
  }
  /// The next line the worker printed; throws if it exited.
  std::string receive() {
    char buf[4096];
    if (!std::fgets(buf, sizeof buf, out_)) throw std::runtime_error(program_ + ": worker ended unexpectedly");
    std::string line(buf);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    return line;
  }

 private:
  std::string program_;
  pid_t pid_ = -1;
  FILE* in_ = nullptr;
  FILE* out_ = nullptr;
};

/// "key=value" pairs of a protocol line.
std::map<std::string, std::string> key_values(const std::string& line) {
  std::map<std::string, std::string> kv;
  std::istringstream in(line);
  std::string token;
  while (in >> token) {
    auto eq = token.find('=');
    if (eq != std::string::npos) kv[token.substr(0, eq)] = token.substr(eq + 1);
  }
  return kv;
}

std::string self_directory() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  std::string path(buf, static_cast<size_t>(n));
  return path.substr(0, path.rfind('/'));
}

struct DriverOptions {
  std::vector<std::string> cases;
  int threads = 1;
  int reps = 0;  // 0 = each case's default
  bool torch = true;
  int warmup = -1;
};

struct LibraryRun {
  std::vector<double> seconds, cpu_seconds;
  std::string ready, done;
  double last_loss = 0;
};

void run_case(const Case& c, const DriverOptions& opt, const std::string& dir) {
  const int reps = opt.reps > 0 ? opt.reps : c.default_reps;
  std::printf("-- %s: %s --\n", c.name, c.description);
  std::vector<std::string> worker_args = {"--worker", "--case", c.name, "--threads", std::to_string(opt.threads)};
  if (opt.warmup >= 0) {
    worker_args.push_back("--warmup");
    worker_args.push_back(std::to_string(opt.warmup));
  }
  std::vector<std::unique_ptr<Child>> children;
  std::vector<std::string> labels;
  std::vector<LibraryRun> runs;
  // One worker after the other sets up and warms up, so neither warm-up overlaps the other's.
  children.push_back(std::make_unique<Child>(dir + "/bench_train", worker_args));
  labels.push_back("xgrad");
  runs.emplace_back();
  runs[0].ready = children[0]->receive();
  const std::string torch_path = dir + "/bench_train_torch";
  if (opt.torch && access(torch_path.c_str(), X_OK) == 0) {
    children.push_back(std::make_unique<Child>(torch_path, worker_args));
    labels.push_back("libtorch");
    runs.emplace_back();
    runs[1].ready = children[1]->receive();
  }
  const size_t n = children.size();
  for (size_t k = 0; k < n; ++k) {
    if (runs[k].ready.rfind("ready", 0) != 0) throw std::runtime_error(labels[k] + " worker: " + runs[k].ready);
  }
  for (int r = 0; r < reps; ++r) {
    for (size_t k = 0; k < n; ++k) {
      const size_t which = (k + static_cast<size_t>(r)) % n;  // who goes first alternates
      children[which]->send("run");
      std::istringstream in(children[which]->receive());
      std::string word;
      double seconds = 0, loss = 0, cpu = 0;
      in >> word >> seconds >> loss >> cpu;
      if (word != "time") throw std::runtime_error(labels[which] + " worker: unexpected reply");
      runs[which].seconds.push_back(seconds);
      runs[which].cpu_seconds.push_back(cpu);
      runs[which].last_loss = loss;
    }
  }
  for (size_t k = 0; k < n; ++k) {
    children[k]->send("quit");
    runs[k].done = children[k]->receive();
  }
  children.clear();  // waits for the workers

  const double per = c.steps_per_rep > 0 ? 1e3 / c.steps_per_rep : 1.0;  // ms per step, or s per epoch
  const char* unit = c.steps_per_rep > 0 ? "ms" : "s";
  const char* per_what = c.steps_per_rep > 0 ? "per step" : "per epoch";
  std::printf("   %d repetitions alternating (%s), %d step(s) each; times %s %s\n", reps,
              n > 1 ? "xgrad, libtorch" : "xgrad only", c.steps_per_rep > 0 ? c.steps_per_rep : 1,
              unit, per_what);
  std::vector<bench::Stats> stats, cpu_stats;
  std::vector<double> peak_mb;
  for (size_t k = 0; k < n; ++k) {
    std::vector<double> v, cpu;
    for (double s : runs[k].seconds) v.push_back(s * per);
    for (double s : runs[k].cpu_seconds) cpu.push_back(s * per);
    stats.push_back(bench::stats_of(v));
    cpu_stats.push_back(bench::stats_of(cpu));
    auto kv = key_values(runs[k].done);
    peak_mb.push_back(std::atof(kv["peak_rss_kb"].c_str()) / 1024.0);
    std::printf("   %-9s median %9.3f %s  min %9.3f %s  peak RSS %7.1f MB  last loss %-9.5g [%s]\n", labels[k].c_str(),
                stats[k].median, unit, stats[k].min, unit, peak_mb[k], runs[k].last_loss,
                runs[k].ready.substr(std::min<size_t>(6, runs[k].ready.size())).c_str());
    std::printf("   %-9s process CPU time: median %9.3f %s  min %9.3f %s\n", "", cpu_stats[k].median, unit, cpu_stats[k].min, unit);
    const std::string lib = k == 0 ? "xgrad" : "torch";
    bench::result_line("bench_train", c.name, (std::string(unit) + "_" + lib).c_str(), stats[k].median, stats[k].min, unit);
    bench::result_line("bench_train", c.name, ("cpu_" + std::string(unit) + "_" + lib).c_str(), cpu_stats[k].median, cpu_stats[k].min,
                       unit);
    bench::result_line("bench_train", c.name, ("peak_mb_" + lib).c_str(), peak_mb[k], peak_mb[k], "MB");
  }
  if (n > 1) {
    bench::Stats ratio = bench::stats_of(bench::paired_ratios(runs[0].seconds, runs[1].seconds));
    const double mem_ratio = peak_mb[0] / peak_mb[1];
    std::printf("   xgrad/libtorch time (paired median) %.3f  (range %.3f .. %.3f) -> %s;  peak memory %.2f -> %s\n",
                ratio.median, ratio.min, ratio.max, bench::pass_fail(ratio.median <= 1.0), mem_ratio,
                bench::pass_fail(mem_ratio <= 1.0));
    bench::Stats cpu_ratio = bench::stats_of(bench::paired_ratios(runs[0].cpu_seconds, runs[1].cpu_seconds));
    std::printf("   xgrad/libtorch process CPU time (paired median) %.3f  (range %.3f .. %.3f)\n\n", cpu_ratio.median, cpu_ratio.min,
                cpu_ratio.max);
    bench::result_line("bench_train", c.name, "ratio_time", ratio.median, ratio.min, "x");
    bench::result_line("bench_train", c.name, "ratio_cpu", cpu_ratio.median, cpu_ratio.min, "x");
    bench::result_line("bench_train", c.name, "ratio_peak_mb", mem_ratio, mem_ratio, "x");
    bench::g_summary.push_back({c.name, std::string(unit) + " " + per_what,
                                bench::fmt_num(stats[0].median, 3) + " (min " + bench::fmt_num(stats[0].min, 3) + ")",
                                bench::fmt_num(stats[1].median, 3) + " (min " + bench::fmt_num(stats[1].min, 3) + ")",
                                bench::fmt_num(ratio.median, 3) + " (cpu " + bench::fmt_num(cpu_ratio.median, 3) + ")",
                                "mem " + bench::fmt_num(peak_mb[0], 0) + "/" + bench::fmt_num(peak_mb[1], 0) + " MB",
                                std::string(bench::pass_fail(ratio.median <= 1.0)) + "/" + bench::pass_fail(mem_ratio <= 1.0)});
  } else {
    std::printf("\n");
    bench::g_summary.push_back({c.name, std::string(unit) + " " + per_what, bench::fmt_num(stats[0].median, 3), "-", "-",
                                "mem " + bench::fmt_num(peak_mb[0], 0) + " MB", "-"});
  }
  std::fflush(stdout);
}

int run_driver(int argc, char** argv) {
  DriverOptions opt;
  if (const char* t = std::getenv("OPENBLAS_NUM_THREADS")) opt.threads = std::max(1, std::atoi(t));
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--cases" || a == "--only") {
      std::stringstream in(next());
      std::string name;
      while (std::getline(in, name, ','))
        if (!name.empty()) opt.cases.push_back(name);
    } else if (a == "--threads") opt.threads = std::max(1, std::atoi(next().c_str()));
    else if (a == "--reps") opt.reps = std::max(1, std::atoi(next().c_str()));
    else if (a == "--quick") opt.reps = 20;
    else if (a == "--warmup") opt.warmup = std::max(0, std::atoi(next().c_str()));
    else if (a == "--no-torch") opt.torch = false;
    else if (a == "--list") {
      for (const Case& c : bench::train::cases()) std::printf("%-12s %s\n", c.name, c.description);
      return 0;
    } else if (a == "-h" || a == "--help") {
      std::printf("usage: %s [--cases NAME,NAME] [--threads N] [--reps N] [--quick] [--warmup N] [--no-torch] [--list]\n"
                  "       %s --profile SECONDS --case NAME   (xgrad alone, untimed, for perf/callgrind)\n",
                  argv[0], argv[0]);
      return 0;
    } else {
      std::fprintf(stderr, "unknown argument %s (try --help)\n", a.c_str());
      return 2;
    }
  }
  if (opt.cases.empty())
    for (const Case& c : bench::train::cases()) opt.cases.push_back(c.name);
  for (const auto& name : opt.cases)
    if (!bench::train::find_case(name)) {
      std::fprintf(stderr, "unknown case '%s' (--list shows them)\n", name.c_str());
      return 2;
    }
  // Both workers inherit these: the same thread count for OpenBLAS (both libraries' GEMMs) and
  // for libtorch's OpenMP pool.
  const std::string threads = std::to_string(opt.threads);
  setenv("OPENBLAS_NUM_THREADS", threads.c_str(), 1);
  setenv("OMP_NUM_THREADS", threads.c_str(), 1);
  // libtorch's intra-op pool is libgomp; GOMP's default lets idle workers spin, and next to
  // OpenBLAS's own spinning workers on 2 cores that made a libtorch MLP step 100x slower with 2
  // threads (bench/README.md). PASSIVE is libtorch's better setting here, so it is the default;
  // an OMP_WAIT_POLICY already in the environment is kept. xgrad has no OpenMP runtime.
  setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
  signal(SIGPIPE, SIG_IGN);
  const std::string dir = self_directory();
  std::string extra = "threads:              " + threads + " (OPENBLAS_NUM_THREADS = OMP_NUM_THREADS = at::set_num_threads)\n" +
                      "OMP_WAIT_POLICY:      " + bench::env_or("OMP_WAIT_POLICY") + " (libtorch's OpenMP pool)\n" +
                      "workers:              " + dir + "/bench_train (xgrad), " + dir + "/bench_train_torch (libtorch)" +
                      (opt.torch && access((dir + "/bench_train_torch").c_str(), X_OK) == 0 ? "" : " [libtorch worker absent]") + "\n" +
                      "reps:                 " + (opt.reps > 0 ? std::to_string(opt.reps) : std::string("case defaults (>= 20)")) +
                      (opt.reps > 0 && opt.reps < 20 ? " (below 20: a smoke run, not a result)" : "") + "\n";
  bench::print_banner("bench_train", extra);
  try {
    for (const auto& name : opt.cases) run_case(*bench::train::find_case(name), opt, dir);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_train: error: %s\n", e.what());
    return 1;
  }
  bench::print_summary("bench_train", "xgrad");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  bench::train::WorkerArgs worker_args;
  bool is_worker = false;
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--worker" || std::string(argv[i]) == "--profile") is_worker = true;
  if (is_worker) {
    try {
      if (!bench::train::parse_worker_args(argc, argv, worker_args)) {
        std::fprintf(stderr, "bench_train: bad worker arguments\n");
        return 2;
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "bench_train: %s\n", e.what());
      return 2;
    }
    return run_worker(worker_args);
  }
  return run_driver(argc, argv);
}
