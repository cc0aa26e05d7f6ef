// Chapter 1 of Michael Nielsen's "Neural Networks and Deep Learning" (network.py), on 10,000 real MNIST
// digits (8,000 to train, 2,000 to test; fetched by scripts/get_mnist.sh):
//
//   784 inputs - 30 sigmoid neurons - 10 sigmoid outputs, weights and biases ~ N(0, 1),
//   quadratic cost C = 1/(2n) sum_x ||y(x) - a(x)||^2, mini-batch SGD with eta = 3.0, mini-batches of 10, 30 epochs.
//
// After each epoch it prints, as the book does, how many test digits the network gets right:
// "Epoch 0: 1803 / 2000". The defaults reach at least 90% (the book: about 95% with 50,000 training digits).
//
// smoke-test: --epochs 1 --limit-train 2000 --limit-test 500 --no-progress
#include <iostream>

#include "common/mnist_digits.hpp"

namespace nn = xg::nn;

/// main's body: training::run_main reports any exception that leaves it and exits non-zero.
int example_main(int argc, char** argv) {
  CLI::App app{"Nielsen's network.py on real MNIST digits: 784-30-10 sigmoid network, quadratic cost, mini-batch SGD"};
  training::CommonOptions common;
  common.epochs = 30;
  common.batch_size = 10;
  common.lr = 3.0;
  common.val_fraction = 0.0;
  // Mini-batches of 10 make every matrix product tiny: handing them to a second OpenBLAS thread costs more
  // than it saves (measured on the 2-core machine, see examples/README-book.md). --threads 0 restores xgrad's default (all CPUs).
  common.threads = 1;
  training::add_common_options(app, common);
  int64_t hidden = 30;
  app.add_option("--hidden", hidden, "Sigmoid neurons in the hidden layer")
      ->capture_default_str()
      ->check(training::size_range(8192));
  CLI11_PARSE(app, argc, argv);
  if (hidden <= 0) {
    std::cerr << "error: --hidden must be positive (see --help)\n";
    return 2;
  }
  training::apply_common_options(common, "book_network");

  const training::DataSplits data = book::load_mnist_digits(common);
  xg::data::DataLoader train_loader(data.train, xg::data::DataLoaderOptions(common.batch_size).shuffle(true).seed(common.seed + 1));
  std::unique_ptr<xg::data::DataLoader> val_loader;
  if (data.val) val_loader = std::make_unique<xg::data::DataLoader>(data.val, xg::data::DataLoaderOptions(1000));
  xg::data::DataLoader test_loader(data.test, xg::data::DataLoaderOptions(1000));

  nn::Linear hidden_layer(784, hidden), output_layer(hidden, 10);
  // network.py draws every weight and bias from N(0, 1).
  for (nn::Linear* layer : {&hidden_layer, &output_layer}) {
    nn::init::normal_((*layer)->weight, 0.0, 1.0);
    nn::init::normal_((*layer)->bias, 0.0, 1.0);
  }
  nn::Sequential model(nn::Flatten(), hidden_layer, nn::Sigmoid(), output_layer, nn::Sigmoid());
  xg::optim::SGD optimizer(model->parameters(), xg::optim::SGDOptions(common.lr));

  book::BookSetup setup;
  setup.name = "book_network";
  setup.cost_name = "quadratic cost";
  setup.model = model.ptr();
  setup.forward = [&](const xg::Tensor& images) { return model(images); };
  // C_x = 1/2 ||a - y||^2 per digit; SGD follows its mean over the mini-batch (the book's eta/m * sum).
  setup.summed_cost = [](const xg::Tensor& activations, const xg::Tensor& labels) {
    return ((activations - book::one_hot_targets(labels, activations)).pow(2.0)).sum() * 0.5;
  };
  setup.training_cost = [&](const xg::Tensor& activations, const xg::Tensor& labels) {
    return setup.summed_cost(activations, labels) / static_cast<double>(labels.size(0));
  };
  setup.optimizer = &optimizer;
  setup.train_loader = &train_loader;
  setup.val_loader = val_loader.get();
  setup.test_loader = &test_loader;
  return book::train_like_the_book(setup, common).exit_code();
}

int main(int argc, char** argv) { return training::run_main(argc, argv, example_main); }
