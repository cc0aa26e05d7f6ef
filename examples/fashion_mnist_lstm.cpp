// An LSTM that reads each Fashion-MNIST image row by row -- 28 time steps of 28 pixels -- and
// classifies it from its last hidden state: a recurrent network on data that is not a sequence, the
// classic demonstration that the cell's memory carries information across steps.
//
//   image [N, 1, 28, 28] -> rows [N, 28 steps, 28] -> LSTM (28 -> 128) -> h_T [N, 128] -> linear (128 -> 10)
//
// The defaults reach >= 88% test accuracy.
//
// smoke-test: --epochs 1 --limit-train 2048 --limit-test 512 --no-progress
#include <iostream>
#include <tuple>

#include "common/training.hpp"

namespace nn = xg::nn;

namespace {

/// Rows of the image as the time steps of an LSTM; the last layer's final hidden state feeds a linear head.
class RowLSTMImpl : public nn::Module {
 public:
  RowLSTMImpl(int64_t hidden, int64_t layers)
      : nn::Module("RowLSTM"),
        lstm(register_module("lstm", nn::LSTM(nn::LSTMOptions(28, hidden).num_layers(layers).batch_first(true)))),
        head(register_module("head", nn::Linear(hidden, 10))) {}

  /// images [N, 1, 28, 28] -> logits [N, 10].
  xg::Tensor forward(const xg::Tensor& images) {
    const int64_t n = images.size(0);
    const xg::Tensor rows = images.reshape({n, 28, 28});  // [batch, time = image row, features = pixels of the row]
    auto [output, state] = lstm(rows);
    const xg::Tensor& h_n = std::get<0>(state);  // [layers, N, hidden]
    return head(h_n.narrow(0, h_n.size(0) - 1, 1).squeeze(0));
  }

  nn::LSTM lstm;
  nn::Linear head;
};
XG_MODULE(RowLSTM);

}  // namespace

/// main's body: training::run_main reports any exception that leaves it and exits non-zero.
int example_main(int argc, char** argv) {
  CLI::App app{"Fashion-MNIST with an LSTM reading each image row by row (28 steps of 28 pixels)"};
  training::CommonOptions common;
  common.epochs = 8;
  common.batch_size = 128;
  common.lr = 2e-3;
  training::add_common_options(app, common);
  int64_t hidden = 128, layers = 1;
  double clip = 1.0;
  app.add_option("--hidden", hidden, "LSTM hidden units")->capture_default_str()->check(training::size_range(4096));
  app.add_option("--layers", layers, "Stacked LSTM layers")->capture_default_str()->check(training::size_range(64));
  app.add_option("--clip", clip, "Clip the gradients' total norm to this (0 = off)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (hidden <= 0 || layers <= 0 || clip < 0) {
    std::cerr << "error: --hidden and --layers must be positive, --clip >= 0\n";
    return 2;
  }
  training::apply_common_options(common, "fashion_mnist_lstm");

  const training::DataSplits data = training::load_fashion_mnist(common);
  const xg::data::transforms::Normalize normalize({0.2860}, {0.3530});
  xg::data::DataLoader train_loader(data.train, xg::data::DataLoaderOptions(common.batch_size).shuffle(true).seed(common.seed + 1),
                                    normalize);
  xg::data::DataLoader val_loader(data.val, xg::data::DataLoaderOptions(1000), normalize);
  xg::data::DataLoader test_loader(data.test, xg::data::DataLoaderOptions(1000), normalize);

  RowLSTM model(hidden, layers);
  xg::optim::Adam optimizer(model->parameters(), xg::optim::AdamOptions(common.lr));
  xg::optim::CosineAnnealingLR scheduler(optimizer, std::max<int64_t>(common.epochs, 1));

  training::TrainSetup setup;
  setup.name = "fashion_mnist_lstm";
  setup.model = model.ptr();
  setup.forward = [&](const xg::Tensor& x) { return model(x); };
  setup.optimizer = &optimizer;
  setup.scheduler = &scheduler;
  // Recurrent nets can have exploding gradients through time: clipping the norm keeps steps bounded.
  setup.max_grad_norm = clip;
  setup.train_loader = &train_loader;
  setup.val_loader = &val_loader;
  setup.test_loader = &test_loader;
  return training::fit(setup, common).exit_code();
}

int main(int argc, char** argv) { return training::run_main(argc, argv, example_main); }
