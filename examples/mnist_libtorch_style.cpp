// PyTorch's C++ MNIST example (pytorch/examples, cpp/mnist/mnist.cpp), ported to xgrad the way the
// guide promises: `torch::` became `xg::`, the device code went away, and nothing else changed in the
// structure -- a Net module with registered submodules, datasets::MNIST mapped through Normalize<> and
// Stack<>, make_data_loader with a SequentialSampler for training and the default RandomSampler for
// testing, SGD with momentum, and the example's train()/test() templates over any loader.
//
// The free functions libtorch has in `torch::` (max_pool2d, dropout, nll_loss with
// torch::Reduction::Sum) are xg:: functions with ATen's signatures, so those lines read as the original. Data: the 10,000 real MNIST digits from scripts/get_mnist.sh (8,000 train,
// 2,000 test; $XGRAD_MNIST_DIR or ~/.cache/xgrad/mnist), or any MNIST directory given as the first argument.
// Exits non-zero when the test accuracy after training is below --min-accuracy (a smoke test's check).
//
// smoke-test: --epochs 3 --workers 2 --min-accuracy 0.8
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <CLI/CLI.hpp>

#include "common/mnist_digits.hpp"
#include "common/training.hpp"

// Where to find the MNIST dataset.
static std::string kDataRoot;

// The batch size for training.
const int64_t kTrainBatchSize = 64;

// The batch size for testing.
const int64_t kTestBatchSize = 1000;

// After how many batches to log a new update with the loss value.
const int64_t kLogInterval = 10;

struct Net : xg::nn::Module {
  Net()
      : conv1(xg::nn::Conv2dOptions(1, 10, /*kernel_size=*/5)),
        conv2(xg::nn::Conv2dOptions(10, 20, /*kernel_size=*/5)),
        fc1(320, 50),
        fc2(50, 10) {
    register_module("conv1", conv1);
    register_module("conv2", conv2);
    register_module("conv2_drop", conv2_drop);
    register_module("fc1", fc1);
    register_module("fc2", fc2);
  }

  xg::Tensor forward(xg::Tensor x) {
    x = xg::relu(xg::max_pool2d(conv1->forward(x), 2));
    x = xg::relu(xg::max_pool2d(conv2_drop->forward(conv2->forward(x)), 2));
    x = x.view({-1, 320});
    x = xg::relu(fc1->forward(x));
    x = xg::dropout(x, /*p=*/0.5, /*training=*/is_training());
    x = fc2->forward(x);
    return xg::log_softmax(x, /*dim=*/1);
  }

  xg::nn::Conv2d conv1;
  xg::nn::Conv2d conv2;
  xg::nn::Dropout2d conv2_drop;
  xg::nn::Linear fc1;
  xg::nn::Linear fc2;
};

template <typename DataLoader>
void train(size_t epoch, Net& model, DataLoader& data_loader, xg::optim::Optimizer& optimizer, size_t dataset_size) {
  model.train();
  size_t batch_idx = 0;
  for (auto& batch : data_loader) {
    auto data = batch.data, targets = batch.target;
    optimizer.zero_grad();
    auto output = model.forward(data);
    auto loss = xg::nll_loss(output, targets);
    XG_CHECK(!std::isnan(loss.template item<float>()), "the training loss is NaN");
    loss.backward();
    optimizer.step();

    if (batch_idx++ % kLogInterval == 0) {
      std::printf("\rTrain Epoch: %zu [%5zu/%5zu] Loss: %.4f", epoch, batch_idx * static_cast<size_t>(batch.data.size(0)),
                  dataset_size, loss.template item<float>());
    }
  }
}

template <typename DataLoader>
double test(Net& model, DataLoader& data_loader, size_t dataset_size) {
  xg::NoGradGuard no_grad;
  model.eval();
  double test_loss = 0;
  int64_t correct = 0;
  for (const auto& batch : data_loader) {
    auto data = batch.data, targets = batch.target;
    auto output = model.forward(data);
    test_loss += xg::nll_loss(output, targets, /*weight=*/{}, xg::Reduction::Sum).template item<float>();
    auto pred = output.argmax(1);
    correct += pred.eq(targets).sum().template item<int64_t>();
  }

  test_loss /= static_cast<double>(dataset_size);
  const double accuracy = static_cast<double>(correct) / static_cast<double>(dataset_size);
  std::printf("\nTest set: Average loss: %.4f | Accuracy: %.3f\n", test_loss, accuracy);
  return accuracy;
}

int main(int argc, char** argv) {
  // training::run_main turns any exception into one "error:" line and exit code 1 (every example's main).
  return training::run_main(argc, argv, [](int argc, char** argv) {
    size_t kNumberOfEpochs = 10;
    size_t workers = 0;
    double min_accuracy = 0;
    CLI::App app{"PyTorch's C++ MNIST example, ported to xgrad"};
    app.add_option("data_root", kDataRoot, "MNIST directory (default: where scripts/get_mnist.sh puts the digits)");
    app.add_option("--epochs", kNumberOfEpochs, "epochs to train")->check(CLI::PositiveNumber);
    app.add_option("--workers", workers, "data loader worker threads")->check(CLI::Range(0, 64));
    app.add_option("--min-accuracy", min_accuracy, "exit with status 1 when the final test accuracy is lower");
    CLI11_PARSE(app, argc, argv);
    if (kDataRoot.empty()) kDataRoot = book::default_mnist_digits_dir();

    xg::manual_seed(1);

    Net model;

    auto train_dataset = xg::data::datasets::MNIST(kDataRoot)
                             .map(xg::data::transforms::Normalize<>(0.1307, 0.3081))
                             .map(xg::data::transforms::Stack<>());
    const size_t train_dataset_size = train_dataset.size().value();
    auto train_loader = xg::data::make_data_loader<xg::data::samplers::SequentialSampler>(
        std::move(train_dataset), xg::data::DataLoaderOptions().batch_size(kTrainBatchSize).workers(workers));

    auto test_dataset = xg::data::datasets::MNIST(kDataRoot, xg::data::datasets::MNIST::Mode::kTest)
                            .map(xg::data::transforms::Normalize<>(0.1307, 0.3081))
                            .map(xg::data::transforms::Stack<>());
    const size_t test_dataset_size = test_dataset.size().value();
    auto test_loader = xg::data::make_data_loader(std::move(test_dataset), kTestBatchSize);

    xg::optim::SGD optimizer(model.parameters(), xg::optim::SGDOptions(0.01).momentum(0.5));

    double accuracy = 0;
    for (size_t epoch = 1; epoch <= kNumberOfEpochs; ++epoch) {
      train(epoch, model, *train_loader, optimizer, train_dataset_size);
      accuracy = test(model, *test_loader, test_dataset_size);
    }
    if (accuracy < min_accuracy) {
      std::fprintf(stderr, "mnist_libtorch_style: test accuracy %.3f is below --min-accuracy %.3f\n", accuracy, min_accuracy);
      return 1;
    }
    return 0;
  });
}
