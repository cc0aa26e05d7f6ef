// Soak test: a long run must reach a memory plateau. Resident memory (/proc/self/statm) is sampled while
//   train  -- a tiny CNN (conv, batch norm, max pool, dropout, linear) trains with Adam, gradient clipping,
//             a step LR schedule, a shuffling, prefetching DataLoader and a checkpoint every 2,000 steps;
//   eval   -- the same model is evaluated, forgetting NoGradGuard: every forward pass records a graph
//             that must be freed when its output goes out of scope.
// After the warm-up (the first 30% of the steps) resident memory may not grow by more than 1%, the
// caching allocator's live bytes must come back to where they were, and no file descriptor may leak.
//
//   xgrad_soak <train|eval> [steps=20000] [--leak-per-step=BYTES]
//
// --leak-per-step keeps a tensor of that size alive per step (the mistake of accumulating a loss
// history as tensors): the self-test that shows the measurement catches a leak (ctest expects failure).
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <string>
#include <vector>

#include <xgrad/xgrad.hpp>

using namespace xg;

namespace {

/// Resident set size in bytes, read without allocating (a heap allocation here would disturb what we measure).
size_t resident_bytes() {
  int fd = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char text[128] = {};
  ssize_t n = ::read(fd, text, sizeof(text) - 1);
  ::close(fd);
  if (n <= 0) return 0;
  unsigned long size_pages = 0, resident_pages = 0;
  if (std::sscanf(text, "%lu %lu", &size_pages, &resident_pages) != 2) return 0;
  return resident_pages * static_cast<size_t>(::sysconf(_SC_PAGESIZE));
}

/// Open file descriptors (entries of /proc/self/fd, minus the one used to list them).
int open_descriptors() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int count = 0;
  while (::readdir(dir) != nullptr) ++count;
  ::closedir(dir);
  return count - 3;  // ".", ".." and the directory's own descriptor
}

struct NetImpl : nn::Module {
  nn::Conv2d conv{nn::Conv2dOptions(1, 4, 3).padding(1)};
  nn::BatchNorm2d norm{4};
  nn::MaxPool2d pool{2};
  nn::Dropout dropout{0.1};
  nn::Linear fc{4 * 6 * 6, 10};
  NetImpl() {
    register_module("conv", conv);
    register_module("norm", norm);
    register_module("pool", pool);
    register_module("dropout", dropout);
    register_module("fc", fc);
  }
  /// [N, 1, 12, 12] -> logits [N, 10].
  Tensor forward(const Tensor& x) {
    Tensor h = pool(relu(norm(conv(x))));
    return fc(dropout(h.flatten(1)));
  }
};
XG_MODULE(Net);

struct Options {
  std::string mode;
  int64_t steps = 20000;
  int64_t leak_per_step = 0;
};

Options parse(int argc, char** argv) {
  Options options;
  if (argc < 2) throw std::runtime_error("usage: xgrad_soak <train|eval> [steps] [--leak-per-step=BYTES]");
  options.mode = argv[1];
  if (options.mode != "train" && options.mode != "eval") throw std::runtime_error("mode must be train or eval, got " + options.mode);
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    const std::string leak_flag = "--leak-per-step=";
    if (arg.rfind(leak_flag, 0) == 0) options.leak_per_step = std::stoll(arg.substr(leak_flag.size()));
    else options.steps = std::stoll(arg);
  }
  if (options.steps < 100) throw std::runtime_error("steps must be at least 100");
  return options;
}

int run(const Options& options) {
  manual_seed(0);
  // 256 random 12x12 images of 10 classes: the loader reshuffles them every 16 steps.
  auto dataset = std::make_shared<data::TensorDataset>(randn({256, 1, 12, 12}), randint(0, 10, {256}));
  data::DataLoader loader(dataset, data::DataLoaderOptions(16).shuffle(true));
  Net model;
  optim::Adam optimizer(model->parameters(), optim::AdamOptions(1e-3));
  optim::StepLR scheduler(optimizer, 5000, 0.5);
  const std::filesystem::path checkpoint_dir =
      std::filesystem::temp_directory_path() / ("xgrad_soak_" + std::to_string(::getpid()));
  std::filesystem::create_directories(checkpoint_dir);
  const std::string checkpoint_path = (checkpoint_dir / "model.safetensors").string();
  if (options.mode == "eval") model->eval();

  const int64_t sample_every = 100;
  // 30%: the per-thread free lists of small objects (autograd/allocator.cpp) and malloc's arenas take a
  // few thousand steps to reach their high-water mark (measured: 8.4 -> 10.6 MiB by step ~6,000, then flat
  // through step 60,000); a 10% warm-up counted that filling as growth.
  const int64_t warmup_steps = options.steps * 3 / 10;
  std::vector<size_t> samples;  // reserved up front: the vector must not allocate during the run
  samples.reserve(static_cast<size_t>(options.steps / sample_every + 2));
  std::vector<Tensor> leaked;
  leaked.reserve(options.leak_per_step > 0 ? static_cast<size_t>(options.steps) : 0);
  size_t live_bytes_after_warmup = 0;
  int descriptors_after_warmup = 0;
  double last_loss = 0.0;
  int64_t correct = 0;

  const auto start = std::chrono::steady_clock::now();
  const std::clock_t cpu_start = std::clock();
  int64_t step = 0;
  while (step < options.steps) {
    for (const data::Example<>& batch : loader) {
      if (step == options.steps) break;
      if (options.mode == "train") {
        optimizer.zero_grad();
        Tensor loss = nn::functional::cross_entropy(model(batch.data), batch.target);
        loss.backward();
        optim::clip_grad_norm_(model->parameters(), 5.0);
        optimizer.step();
        scheduler.step();
        last_loss = loss.item<double>();
        if ((step + 1) % 2000 == 0) nn::save(model, checkpoint_path);
      } else {
        // No NoGradGuard on purpose: the logits require grad and carry a graph.
        Tensor logits = model(batch.data);
        correct += eq(argmax(logits, 1), batch.target).sum().item<int64_t>();
      }
      if (options.leak_per_step > 0) leaked.push_back(zeros({options.leak_per_step / 4}));
      ++step;
      if (step == warmup_steps) {
        live_bytes_after_warmup = allocator_stats().allocated_bytes;
        descriptors_after_warmup = open_descriptors();
      }
      if (step % sample_every == 0) samples.push_back(resident_bytes());
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double cpu_seconds = static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;
  std::filesystem::remove_all(checkpoint_dir);

  const size_t warmup_samples = static_cast<size_t>(warmup_steps / sample_every);
  const size_t warmup_peak = *std::max_element(samples.begin(), samples.begin() + warmup_samples);
  const size_t later_peak = *std::max_element(samples.begin() + warmup_samples, samples.end());
  const double growth = (static_cast<double>(later_peak) - static_cast<double>(warmup_peak)) / static_cast<double>(warmup_peak);
  const size_t live_bytes_end = allocator_stats().allocated_bytes;
  const int descriptors_end = open_descriptors();
  std::printf("soak %s: %lld steps in %.1f s (%.0f us/step; %.1f s of CPU time over all threads)%s\n", options.mode.c_str(),
              static_cast<long long>(options.steps), seconds, 1e6 * seconds / static_cast<double>(options.steps), cpu_seconds,
              options.mode == "train" ? (" final loss " + std::to_string(last_loss)).c_str()
                                      : (" accuracy " + std::to_string(static_cast<double>(correct) / (16.0 * options.steps))).c_str());
  std::printf("resident memory: first sample %.2f MiB, warm-up peak %.2f MiB, later peak %.2f MiB, last %.2f MiB: growth %+.3f%% (limit 1%%)\n",
              samples.front() / 1048576.0, warmup_peak / 1048576.0, later_peak / 1048576.0, samples.back() / 1048576.0, 100.0 * growth);
  std::printf("caching allocator live bytes: %zu after warm-up, %zu at the end; open descriptors: %d after warm-up, %d at the end\n",
              live_bytes_after_warmup, live_bytes_end, descriptors_after_warmup, descriptors_end);

  bool ok = true;
  if (growth >= 0.01) {
    std::printf("FAIL: resident memory grew by %.3f%% after the warm-up\n", 100.0 * growth);
    ok = false;
  }
  if (live_bytes_end > live_bytes_after_warmup) {
    std::printf("FAIL: %zu more tensor bytes are alive than after the warm-up\n", live_bytes_end - live_bytes_after_warmup);
    ok = false;
  }
  if (descriptors_end != descriptors_after_warmup) {
    std::printf("FAIL: %d file descriptors were leaked\n", descriptors_end - descriptors_after_warmup);
    ok = false;
  }
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const std::exception& error) {
    std::fprintf(stderr, "xgrad_soak: %s\n", error.what());
    return 2;
  }
}
