// The vanishing-gradient experiment of "Neural Networks and Deep Learning", chapter 5: in a deep
// network of sigmoid layers the gradient shrinks on its way back, so the early layers learn orders of
// magnitude more slowly than the late ones. The same depth with ReLU units, residual connections and
// BatchNorm keeps the gradient at the same scale in every layer.
//
// Both networks have --depth hidden layers of --width units on Fashion-MNIST:
//   sigmoid:  h_l = sigmoid(W_l h_(l-1) + b_l)            (the book's N(0, 1/n_in) weights, N(0, 1) biases)
//   residual: h_l = h_(l-1) + relu(BN(W_l h_(l-1)))        (He init; the first layer maps 784 -> width)
// The program prints, for each hidden layer, the norm of the gradient reaching its weighted input
// ||dC/dz_l|| (the book's delta, its "speed of learning") and of its weight gradient ||dC/dW_l||
// (averaged over a few batches) at initialisation, trains both networks for --steps SGD steps on the same batches, and prints
// the table again with the losses and accuracies.
//
// smoke-test: --steps 60 --limit-train 3000 --limit-test 500
// Batches of 64, 64 and 1 (129 examples): the last, which BatchNorm cannot train on, is dropped.
// smoke-test: --steps 30 --measure-batches 2 --limit-train 129 --limit-test 500
#include <cmath>
#include <iostream>
#include <vector>

#include <fmt/format.h>

#include "common/training.hpp"

namespace nn = xg::nn;
namespace F = xg::nn::functional;

namespace {

/// The hidden Linear layers whose gradients the table shows, and their outputs z_l = W_l h_(l-1) (+ b_l)
/// from the last forward pass when recording (kept with retain_grad so backward fills their .grad()).
struct HasHiddenLayers {
  std::vector<nn::Linear> hidden;
  std::vector<xg::Tensor> weighted_inputs;
  bool record = false;
  xg::Tensor keep(const xg::Tensor& z) {
    if (record) {
      z.retain_grad();
      weighted_inputs.push_back(z);
    }
    return z;
  }
};

/// A deep sigmoid MLP initialised as the book's network2.
class SigmoidMLPImpl : public nn::Module, public HasHiddenLayers {
 public:
  SigmoidMLPImpl(int64_t depth, int64_t width) : nn::Module("SigmoidMLP") {
    int64_t in = 784;
    for (int64_t l = 0; l < depth; ++l) {
      nn::Linear layer(in, width);
      nn::init::normal_fan_in_(layer->weight);  // N(0, 1/n_in)
      nn::init::normal_(layer->bias, 0.0, 1.0);
      hidden.push_back(register_module(fmt::format("hidden{}", l + 1), layer));
      in = width;
    }
    output = register_module("output", nn::Linear(width, 10));
  }
  xg::Tensor forward(const xg::Tensor& images) {
    weighted_inputs.clear();
    xg::Tensor h = images.flatten(1);
    for (auto& layer : hidden) h = xg::sigmoid(keep(layer(h)));
    return output(h);
  }
  nn::Linear output{nullptr};
};
XG_MODULE(SigmoidMLP);

/// The same depth with ReLU, BatchNorm and identity shortcuts around every layer after the first.
class ResidualMLPImpl : public nn::Module, public HasHiddenLayers {
 public:
  ResidualMLPImpl(int64_t depth, int64_t width) : nn::Module("ResidualMLP") {
    int64_t in = 784;
    for (int64_t l = 0; l < depth; ++l) {
      // No bias: the BatchNorm right after it subtracts the mean anyway.
      nn::Linear layer(nn::LinearOptions(in, width).bias(false));
      nn::init::kaiming_normal_(layer->weight, 0.0, "fan_in", "relu");
      hidden.push_back(register_module(fmt::format("hidden{}", l + 1), layer));
      norms.push_back(register_module(fmt::format("bn{}", l + 1), nn::BatchNorm1d(width)));
      in = width;
    }
    output = register_module("output", nn::Linear(width, 10));
  }
  xg::Tensor forward(const xg::Tensor& images) {
    weighted_inputs.clear();
    xg::Tensor h = xg::relu(norms[0](keep(hidden[0](images.flatten(1)))));
    for (size_t l = 1; l < hidden.size(); ++l) h = h + xg::relu(norms[l](keep(hidden[l](h))));
    return output(h);
  }
  std::vector<nn::BatchNorm1d> norms;
  nn::Linear output{nullptr};
};
XG_MODULE(ResidualMLP);

/// Per hidden layer: ||dC/dz_l|| (the gradient reaching the layer's weighted input: the book's "speed of
/// learning" delta) and ||dC/dW_l||, each averaged over `batches` batches (training mode, no update).
struct LayerGradients {
  std::vector<double> weighted_input, weight;
};

template <class Net>
LayerGradients gradient_norms(Net& net, xg::data::DataLoader& loader, int64_t batches) {
  const size_t depth = net->hidden.size();
  LayerGradients norms{std::vector<double>(depth, 0.0), std::vector<double>(depth, 0.0)};
  int64_t seen = 0;
  net->train();
  net->record = true;
  for (const auto& batch : loader) {
    net->zero_grad();
    F::cross_entropy(net(batch.data), batch.target).backward();
    for (size_t l = 0; l < depth; ++l) {
      norms.weighted_input[l] += net->weighted_inputs[l].grad().norm().template item<double>();
      norms.weight[l] += net->hidden[l]->weight.grad().norm().template item<double>();
    }
    if (++seen >= batches) break;
  }
  net->record = false;
  net->weighted_inputs.clear();
  net->zero_grad();
  for (auto* column : {&norms.weighted_input, &norms.weight})
    for (double& value : *column) value /= static_cast<double>(std::max<int64_t>(seen, 1));
  return norms;
}

void print_table(const std::string& title, const LayerGradients& sigmoid, const LayerGradients& residual) {
  std::cout << "\n" << title << "\n";
  std::cout << fmt::format("  {:<9} {:>27} {:>27}\n", "", "||dC/dz_l|| (delta)", "||dC/dW_l||");
  std::cout << fmt::format("  {:<9} {:>13} {:>13} {:>13} {:>13}\n", "layer", "sigmoid", "relu+res+BN", "sigmoid", "relu+res+BN");
  for (size_t l = 0; l < sigmoid.weight.size(); ++l)
    std::cout << fmt::format("  {:<9} {:>13.3e} {:>13.3e} {:>13.3e} {:>13.3e}\n", l + 1, sigmoid.weighted_input[l],
                             residual.weighted_input[l], sigmoid.weight[l], residual.weight[l]);
  auto ratio = [](const std::vector<double>& column) { return column.front() / column.back(); };
  std::cout << fmt::format("  {:<9} {:>13.3g} {:>13.3g} {:>13.3g} {:>13.3g}\n", "1st/last", ratio(sigmoid.weighted_input),
                           ratio(residual.weighted_input), ratio(sigmoid.weight), ratio(residual.weight));
}

/// Trains `net` for `steps` SGD steps over `loader` (cycling), returns nothing; the caller evaluates.
template <class Net>
void train(Net& net, xg::data::DataLoader& loader, int64_t steps, double lr) {
  xg::optim::SGD optimizer(net->parameters(), xg::optim::SGDOptions(lr));
  net->train();
  int64_t done = 0;
  while (done < steps) {
    for (const auto& batch : loader) {
      optimizer.zero_grad();
      F::cross_entropy(net(batch.data), batch.target).backward();
      optimizer.step();
      if (++done >= steps) break;
    }
  }
}

}  // namespace

/// main's body: training::run_main reports any exception that leaves it and exits non-zero.
int example_main(int argc, char** argv) {
  CLI::App app{"The vanishing-gradient experiment: per-layer gradient norms of a deep sigmoid MLP vs ReLU + residual + BatchNorm"};
  int64_t depth = 8, width = 32, measure_batches = 10, steps = 500, batch_size = 64, limit_train = 0, limit_test = 0;
  double lr = 0.1;
  uint64_t seed = 0;
  std::string data_dir;
  app.add_option("--depth", depth, "Hidden layers")->capture_default_str()->check(training::size_range(1000, 2));
  app.add_option("--width", width, "Units per hidden layer")->capture_default_str()->check(training::size_range(8192));
  app.add_option("--measure-batches", measure_batches, "Batches the gradient norms are averaged over")
      ->capture_default_str()
      ->check(training::size_range(1000000));
  app.add_option("--steps", steps, "SGD steps of training for each network")
      ->capture_default_str()
      ->check(training::size_range(10000000));
  app.add_option("--batch-size", batch_size, "Examples per batch")
      ->capture_default_str()
      ->check(training::size_range(int64_t{1} << 20));
  app.add_option("--lr", lr, "SGD learning rate (the same for both networks)")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--seed", seed, "Random seed")->capture_default_str();
  app.add_option("--limit-train", limit_train, "Use only N random training examples (0 = all)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--limit-test", limit_test, "Use only N random test examples (0 = all)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--data-dir", data_dir, "Fashion-MNIST directory");
  CLI11_PARSE(app, argc, argv);
  if (depth < 2 || width <= 0 || measure_batches <= 0 || steps <= 0 || batch_size <= 0 || !(lr > 0)) {
    std::cerr << "error: --depth must be >= 2; --width, --measure-batches, --steps, --batch-size and --lr positive\n";
    return 2;
  }

  training::CommonOptions common;
  common.seed = seed;
  common.batch_size = batch_size;
  common.limit_train = limit_train;
  common.limit_test = limit_test;
  common.val_fraction = 0;
  common.data_dir = data_dir;
  xg::manual_seed(seed);
  const training::DataSplits data = training::load_fashion_mnist(common);
  // Inputs in [0, 1] as the book feeds them; both networks see the same batches in the same order. The
  // residual network's BatchNorm cannot train on a last batch of one example: train_loader_options drops it.
  auto make_loader = [&] { return xg::data::DataLoader(data.train, training::train_loader_options(common, data.train->size())); };
  xg::data::DataLoader test_loader(data.test, xg::data::DataLoaderOptions(1000));

  xg::manual_seed(seed);
  SigmoidMLP sigmoid(depth, width);
  ResidualMLP residual(depth, width);
  std::cout << fmt::format("{} hidden layers of {} units; gradient norms averaged over {} batches of {}\n", depth, width,
                           measure_batches, batch_size);

  auto measure_loader = make_loader();
  auto measure_loader2 = make_loader();
  print_table("at initialisation:", gradient_norms(sigmoid, measure_loader, measure_batches),
              gradient_norms(residual, measure_loader2, measure_batches));

  const training::Evaluation sigmoid_before = training::evaluate(sigmoid, test_loader);
  const training::Evaluation residual_before = training::evaluate(residual, test_loader);
  auto train_loader = make_loader();
  auto train_loader2 = make_loader();
  train(sigmoid, train_loader, steps, lr);
  train(residual, train_loader2, steps, lr);
  const training::Evaluation sigmoid_after = training::evaluate(sigmoid, test_loader);
  const training::Evaluation residual_after = training::evaluate(residual, test_loader);

  auto measure_loader3 = make_loader();
  auto measure_loader4 = make_loader();
  print_table(fmt::format("after {} SGD steps (lr {}):", steps, lr), gradient_norms(sigmoid, measure_loader3, measure_batches),
              gradient_norms(residual, measure_loader4, measure_batches));

  std::cout << fmt::format("\ntest loss and accuracy ({} images), before -> after training:\n", sigmoid_after.samples);
  std::cout << fmt::format("  sigmoid      {:.4f} -> {:.4f}   {:.2f}% -> {:.2f}%\n", sigmoid_before.loss, sigmoid_after.loss,
                           100 * sigmoid_before.accuracy, 100 * sigmoid_after.accuracy);
  std::cout << fmt::format("  relu+res+BN  {:.4f} -> {:.4f}   {:.2f}% -> {:.2f}%\n", residual_before.loss, residual_after.loss,
                           100 * residual_before.accuracy, 100 * residual_after.accuracy);
  const bool learned = sigmoid_after.loss < sigmoid_before.loss && residual_after.loss < residual_before.loss;
  if (!learned) std::cerr << "error: a network's test loss did not go down\n";
  return learned ? 0 : 1;
}

int main(int argc, char** argv) { return training::run_main(argc, argv, example_main); }
