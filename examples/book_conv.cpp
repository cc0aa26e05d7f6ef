// Chapter 6 of Michael Nielsen's "Neural Networks and Deep Learning" (network3.py): the convolutional
// network of the book's final experiments, on 10,000 real MNIST digits (8,000 to train, 2,000 to test;
// fetched by scripts/get_mnist.sh):
//
//   conv 5x5, 20 maps -> max-pool 2x2 -> ReLU           [1, 28, 28] -> [20, 12, 12]
//   conv 5x5, 40 maps -> max-pool 2x2 -> ReLU           -> [40, 4, 4]
//   dropout 0.5 -> fully connected 640 -> 1000, ReLU
//   dropout 0.5 -> fully connected 1000 -> 1000, ReLU
//   dropout 0.5 -> softmax layer 1000 -> 10
//
// with network3.py's initialisation (weights ~ N(0, 1/n_out) with n_out the units a weight feeds --
// for a conv-pool layer, maps * 25 / 4 -- biases ~ N(0, 1), the softmax layer at zero), the log-likelihood
// cost, mini-batch SGD with eta = 0.03 and mini-batches of 10, and the book's "expanded training data":
// each training image is shifted by up to one pixel (here a fresh random shift every epoch instead of the
// book's four fixed copies). As in network3.py, dropout acts on each fully connected layer's input.
//
// The book trains 40 epochs on 250,000 expanded images; here the defaults (20 epochs of 8,000) reach at
// least 97.5% on the 2,000 test digits (the book: 99.6% with 50,000 training digits).
//
// The smoke test trains one whole epoch: with eta = 0.03 and mini-batches of 10 this network sits near
// chance for its first few hundred steps before it takes off.
// smoke-test: --epochs 1 --limit-test 500 --no-progress
#include <cmath>
#include <iostream>

#include "common/mnist_digits.hpp"

namespace nn = xg::nn;
namespace F = xg::nn::functional;

namespace {

/// network3.py's ConvPoolLayer + FullyConnectedLayer + SoftmaxLayer stack.
struct BookConvNetImpl : nn::Module {
  BookConvNetImpl(double dropout_probability, int64_t hidden)
      : conv1(register_module("conv1", nn::Conv2d(1, 20, 5))),
        conv2(register_module("conv2", nn::Conv2d(20, 40, 5))),
        fc1(register_module("fc1", nn::Linear(40 * 4 * 4, hidden))),
        fc2(register_module("fc2", nn::Linear(hidden, hidden))),
        softmax_layer(register_module("softmax_layer", nn::Linear(hidden, 10))),
        dropout(register_module("dropout", nn::Dropout(dropout_probability))) {
    // network3.py: w ~ N(0, sqrt(1/n_out)) where n_out counts the units a weight feeds after pooling.
    nn::init::normal_(conv1->weight, 0.0, std::sqrt(1.0 / (20 * 25 / 4.0)));
    nn::init::normal_(conv2->weight, 0.0, std::sqrt(1.0 / (40 * 25 / 4.0)));
    nn::init::normal_(fc1->weight, 0.0, std::sqrt(1.0 / static_cast<double>(hidden)));
    nn::init::normal_(fc2->weight, 0.0, std::sqrt(1.0 / static_cast<double>(hidden)));
    for (nn::Linear* layer : {&fc1, &fc2}) nn::init::normal_((*layer)->bias, 0.0, 1.0);
    nn::init::normal_(conv1->bias, 0.0, 1.0);
    nn::init::normal_(conv2->bias, 0.0, 1.0);
    nn::init::zeros_(softmax_layer->weight);
    nn::init::zeros_(softmax_layer->bias);
  }

  /// images [N, 1, 28, 28] -> log-probabilities [N, 10].
  xg::Tensor forward(const xg::Tensor& images) {
    // network3.py applies the activation after pooling; for the monotone ReLU that is the same as before.
    xg::Tensor x = xg::relu(F::max_pool2d(conv1(images), 2));
    x = xg::relu(F::max_pool2d(conv2(x), 2)).flatten(1);
    x = xg::relu(fc1(dropout(x)));
    x = xg::relu(fc2(dropout(x)));
    return xg::log_softmax(softmax_layer(dropout(x)), 1);
  }

  nn::Conv2d conv1, conv2;
  nn::Linear fc1, fc2, softmax_layer;
  nn::Dropout dropout;
};
XG_MODULE(BookConvNet);

}  // namespace

/// main's body: training::run_main reports any exception that leaves it and exits non-zero.
int example_main(int argc, char** argv) {
  CLI::App app{"Nielsen's network3.py convolutional network on real MNIST digits: conv-pool layers, ReLU, dropout, expanded data"};
  training::CommonOptions common;
  common.epochs = 20;
  common.batch_size = 10;
  common.lr = 0.03;
  common.val_fraction = 0.0;
  // Mini-batches of 10 make every matrix product tiny: handing them to a second OpenBLAS thread costs more
  // than it saves (measured on the 2-core machine, see examples/README-book.md). --threads 0 restores xgrad's default (all CPUs).
  common.threads = 1;
  training::add_common_options(app, common);
  double dropout = 0.5, lambda = 0.0;
  int64_t hidden = 1000, shift = 1;
  app.add_option("--dropout", dropout, "Dropout probability on the inputs of the three top layers")->capture_default_str();
  app.add_option("--hidden", hidden, "Neurons in each of the two fully connected layers")
      ->capture_default_str()
      ->check(training::size_range(8192));
  app.add_option("--shift", shift, "Expand the training data: shift each image by up to this many pixels (0 = off)")
      ->capture_default_str();
  app.add_option("--lambda", lambda, "L2 regularisation: + lambda/(2n) * sum of squared weights (the book's last run: 0)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (!(dropout >= 0 && dropout < 1) || hidden <= 0 || shift < 0 || shift > 8 || !(lambda >= 0) || !std::isfinite(lambda)) {
    std::cerr << "error: --dropout must be in [0, 1), --hidden positive, --shift in [0, 8], --lambda >= 0 (see --help)\n";
    return 2;
  }
  training::apply_common_options(common, "book_conv");

  const training::DataSplits data = book::load_mnist_digits(common);
  xg::data::BatchTransform expand;
  if (shift > 0) expand = xg::data::transforms::RandomTranslate(shift);
  xg::data::DataLoader train_loader(data.train, xg::data::DataLoaderOptions(common.batch_size).shuffle(true).seed(common.seed + 1),
                                    expand);
  std::unique_ptr<xg::data::DataLoader> val_loader;
  if (data.val) val_loader = std::make_unique<xg::data::DataLoader>(data.val, xg::data::DataLoaderOptions(500));
  xg::data::DataLoader test_loader(data.test, xg::data::DataLoaderOptions(500));
  const double training_digits = static_cast<double>(data.train->size());

  BookConvNet model(dropout, hidden);
  xg::optim::SGD optimizer(model->parameters(), xg::optim::SGDOptions(common.lr));

  book::BookSetup setup;
  setup.name = "book_conv";
  setup.cost_name = "log-likelihood cost";
  setup.model = model.ptr();
  setup.forward = [&](const xg::Tensor& images) { return model(images); };
  setup.summed_cost = [](const xg::Tensor& log_probabilities, const xg::Tensor& labels) {
    return F::nll_loss(log_probabilities, labels, nn::NLLLossOptions().reduction("sum"));
  };
  setup.training_cost = [&](const xg::Tensor& log_probabilities, const xg::Tensor& labels) {
    xg::Tensor cost = F::nll_loss(log_probabilities, labels);
    if (lambda > 0) cost = cost + nn::l2_penalty(*model) * (lambda / (2.0 * training_digits));
    return cost;
  };
  setup.optimizer = &optimizer;
  setup.train_loader = &train_loader;
  setup.val_loader = val_loader.get();
  setup.test_loader = &test_loader;
  return book::train_like_the_book(setup, common).exit_code();
}

int main(int argc, char** argv) { return training::run_main(argc, argv, example_main); }
