// Data-parallel training of a small CNN on Fashion-MNIST over MPI: every process holds the whole
// model, trains on its shard of each epoch (DistributedSampler) and averages gradients with the
// others during backward (DistributedDataParallel), so N processes see N times the examples per step.
// Rank 0 prints progress and writes the checkpoint; an error on any rank ends the whole job.
//
//   mpirun -np 2 build/examples/fashion_mnist_ddp --epochs 2
//   mpirun -np 4 --hostfile hosts build/examples/fashion_mnist_ddp     (see xgrad/distributed/README.md)
//
// Its smoke test runs under mpirun, so it is registered in tests/distributed/CMakeLists.txt rather
// than by a line in this file. Exits non-zero when the loss of the last epoch is not below the first's.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include <xgrad/xgrad.hpp>

#ifndef XGRAD_HAS_MPI

int main() {
  std::fprintf(stderr,
               "fashion_mnist_ddp: xgrad was built without MPI; install libopenmpi-dev and openmpi-bin "
               "(scripts/setup.sh does) and configure again\n");
  return 1;
}

#else

#include <chrono>
#include <cmath>
#include <sstream>

namespace {

namespace dist = xg::distributed;
namespace F = xg::nn::functional;

/// conv(1->16, 5x5) - ReLU - maxpool 2 - conv(16->32, 5x5) - ReLU - maxpool 2 - linear(1568->128) - ReLU
/// - linear(128->10): [N, 1, 28, 28] -> logits [N, 10].
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
  std::string data = "/usr/share/datasets/fashion-mnist";
  int64_t epochs = 3;
  int64_t batch_size = 64;
  double lr = 0.05;
  double momentum = 0.9;
  int64_t limit = 0;
  int64_t test_limit = 0;
  uint64_t seed = 0;
  double bucket_cap_mb = 25;
  bool synchronous = false;
  int64_t log_interval = 100;
  std::string checkpoint;
};

/// Sum of a few numbers over all ranks (one all-reduce).
std::vector<double> sum_over_ranks(const std::vector<double>& values) {
  xg::Tensor t = xg::tensor(values, {static_cast<int64_t>(values.size())}, xg::TensorOptions(xg::kFloat64));
  dist::all_reduce(t, dist::ReduceOp::kSum);
  return std::vector<double>(t.data_ptr<double>(), t.data_ptr<double>() + values.size());
}

/// The first `limit` examples (all when limit is 0).
std::shared_ptr<const xg::data::Dataset> first(std::shared_ptr<const xg::data::Dataset> dataset, int64_t limit) {
  if (limit <= 0 || limit >= dataset->size()) return dataset;
  std::vector<int64_t> indices(static_cast<size_t>(limit));
  for (int64_t i = 0; i < limit; ++i) indices[static_cast<size_t>(i)] = i;
  return std::make_shared<xg::data::Subset>(dataset, indices);
}

/// Test accuracy over all ranks: rank r scores examples r, r + N, r + 2N, ... (no padding, so every
/// example counts exactly once).
double evaluate(FashionCNN& model, std::shared_ptr<const xg::data::Dataset> test) {
  const int rank = dist::get_rank(), world = dist::get_world_size();
  std::vector<int64_t> mine;
  for (int64_t i = rank; i < test->size(); i += world) mine.push_back(i);
  double correct = 0;
  if (!mine.empty()) {
    auto shard = std::make_shared<xg::data::Subset>(test, mine);
    xg::data::DataLoader loader(shard, xg::data::DataLoaderOptions(512));
    xg::NoGradGuard no_grad;
    model->eval();
    for (const auto& batch : loader)
      correct += xg::eq(model->forward(batch.data).argmax(1), batch.target).sum().item<double>();
    model->train();
  }
  auto totals = sum_over_ranks({correct, static_cast<double>(mine.size())});
  return totals[1] > 0 ? totals[0] / totals[1] : 0.0;
}

int train(const Settings& s) {
  const int rank = dist::get_rank(), world = dist::get_world_size();
  const bool main_process = dist::is_main_process();
  auto train_set = first(std::make_shared<xg::data::MNIST>(s.data, xg::data::MNIST::Mode::kTrain), s.limit);
  auto test_set = first(std::make_shared<xg::data::MNIST>(s.data, xg::data::MNIST::Mode::kTest), s.test_limit);

  auto sampler = std::make_shared<xg::data::DistributedSampler>(
      train_set->size(), xg::data::DistributedSamplerOptions(world, rank).seed(s.seed));
  xg::data::DataLoader loader(train_set, xg::data::DataLoaderOptions(s.batch_size).sampler(sampler));

  xg::manual_seed(s.seed);
  FashionCNN model;
  dist::DistributedDataParallel ddp(
      model, dist::DistributedDataParallelOptions().bucket_cap_mb(s.bucket_cap_mb).overlap_communication(!s.synchronous));
  xg::optim::SGD optimizer(model->parameters(), xg::optim::SGDOptions(s.lr).momentum(s.momentum));

  if (main_process)
    std::printf("fashion_mnist_ddp: %d process(es), %lld training examples (%lld per process per epoch), "
                "batch %lld per process (%lld per step), %lld bucket(s), %s\n",
                world, static_cast<long long>(train_set->size()), static_cast<long long>(sampler->size()),
                static_cast<long long>(s.batch_size), static_cast<long long>(s.batch_size * world),
                static_cast<long long>(ddp.num_buckets()),
                s.synchronous ? "synchronous all-reduce after backward" : "all-reduce overlapped with backward");

  double first_epoch_loss = 0, last_epoch_loss = 0;
  for (int64_t epoch = 0; epoch < s.epochs; ++epoch) {
    sampler->set_epoch(epoch);
    const auto start = std::chrono::steady_clock::now();
    double loss_sum = 0, examples = 0, window_loss = 0;
    int64_t step = 0, window = 0;
    for (const auto& batch : loader) {
      optimizer.zero_grad();
      xg::Tensor loss = F::cross_entropy(model->forward(batch.data), batch.target);
      ddp.backward(loss);
      optimizer.step();
      const double value = loss.item<double>();
      loss_sum += value * static_cast<double>(batch.target.numel());
      examples += static_cast<double>(batch.target.numel());
      window_loss += value;
      ++window;
      if (++step % s.log_interval == 0 && main_process) {
        std::printf("  epoch %lld step %lld/%lld: rank 0 loss %.4f\n", static_cast<long long>(epoch + 1),
                    static_cast<long long>(step), static_cast<long long>(loader.size()), window_loss / window);
        std::fflush(stdout);
        window_loss = 0;
        window = 0;
      }
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    auto totals = sum_over_ranks({loss_sum, examples});
    const double epoch_loss = totals[0] / totals[1];
    // The same all-reduced value on every rank, so all ranks stop together, before rank 0 overwrites the
    // last good checkpoint with diverged weights.
    XG_CHECK(std::isfinite(epoch_loss),
             "fashion_mnist_ddp: the training loss became {} in epoch {}: training diverged (try a smaller --lr){}", epoch_loss,
             epoch + 1, epoch > 0 && !s.checkpoint.empty() ? fmt::format("; the checkpoint of epoch {} is kept", epoch) : "");
    const double accuracy = evaluate(model, test_set);
    if (epoch == 0) first_epoch_loss = epoch_loss;
    last_epoch_loss = epoch_loss;
    if (main_process) {
      std::printf("epoch %lld: train loss %.4f, test accuracy %.2f%%, %.0f examples/s over %d process(es)\n",
                  static_cast<long long>(epoch + 1), epoch_loss, 100 * accuracy, totals[1] / seconds, world);
      std::fflush(stdout);
      if (!s.checkpoint.empty()) {
        xg::nn::save(model, s.checkpoint, {{"epoch", std::to_string(epoch + 1)}});
        std::printf("  checkpoint written to %s\n", s.checkpoint.c_str());
      }
    }
  }
  if (s.epochs > 1 && !(last_epoch_loss < first_epoch_loss)) {
    if (main_process)
      std::fprintf(stderr, "fashion_mnist_ddp: the training loss did not go down (%.4f -> %.4f)\n", first_epoch_loss,
                   last_epoch_loss);
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return dist::run(argc, argv, [&]() -> int {
    Settings s;
    CLI::App app{"Data-parallel CNN training on Fashion-MNIST over MPI (run with mpirun -np N)"};
    app.add_option("--data", s.data, "directory with the Fashion-MNIST idx files (raw or .gz)");
    app.add_option("--epochs", s.epochs, "passes over the training set")->check(CLI::PositiveNumber);
    app.add_option("--batch-size", s.batch_size, "examples per process and step")->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
    app.add_option("--lr", s.lr, "SGD learning rate")->check(CLI::PositiveNumber);
    app.add_option("--momentum", s.momentum, "SGD momentum")->check(CLI::Range(0.0, 1.0));
    app.add_option("--limit", s.limit, "use only the first N training examples (0: all)")->check(CLI::NonNegativeNumber);
    app.add_option("--test-limit", s.test_limit, "use only the first N test examples (0: all)")->check(CLI::NonNegativeNumber);
    app.add_option("--seed", s.seed, "seed of the initial weights and of the shuffling");
    app.add_option("--bucket-cap-mb", s.bucket_cap_mb, "gradient bucket size in MiB")->check(CLI::PositiveNumber);
    app.add_flag("--sync", s.synchronous, "all-reduce all gradients after backward instead of during it");
    app.add_option("--log-interval", s.log_interval, "steps between progress lines")->check(CLI::PositiveNumber);
    app.add_option("--checkpoint", s.checkpoint, "safetensors file rank 0 writes after each epoch");
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& error) {
      // Every rank parses the same command line and leaves the same way; only rank 0 talks.
      std::ostringstream quiet;
      return dist::is_main_process() ? app.exit(error) : app.exit(error, quiet, quiet);
    }
    return train(s);
  });
}

#endif
