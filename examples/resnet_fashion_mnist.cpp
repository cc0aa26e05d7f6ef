// A custom architecture: a small residual network (He et al., 2015) on Fashion-MNIST, written as
// user-defined modules -- a BasicBlock with its own forward, stacked into a ResNet -- the way one writes
// a new architecture with xgrad: register the parts by name, write forward, and everything else
// (parameters, train/eval, checkpoints, printing) comes from nn::Module.
//
//   stem:   conv 3x3 (1 -> w) - BatchNorm - ReLU - max-pool 2                           28x28 -> 14x14
//   stage1: BasicBlock(w -> w)                                                          14x14
//   stage2: BasicBlock(w -> 2w, stride 2)   (1x1 conv + BatchNorm on the shortcut)      7x7
//   stage3: BasicBlock(2w -> 4w, stride 2)                                              4x4
//   head:   global average pool - linear (4w -> 10)
//
// (Like ResNet's own stem, this one halves the resolution before the residual stages: at 28x28 they
// would cost four times as much for little gain on 28x28 images.)
//
// smoke-test: --epochs 1 --limit-train 2048 --limit-test 256 --no-progress
// (A last training batch of one example is fine here: every BatchNorm2d still sees a whole feature map
// per channel, so its loader keeps it, unlike fashion_mnist_cnn's, whose BatchNorm1d cannot.)
#include <iostream>

#include "common/training.hpp"

namespace nn = xg::nn;

namespace {

/// Two 3x3 convolutions with BatchNorm and a shortcut: out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)).
/// The shortcut is the identity, or a strided 1x1 convolution + BatchNorm when the shape changes.
class BasicBlockImpl : public nn::Module {
 public:
  BasicBlockImpl(int64_t in_channels, int64_t out_channels, int64_t stride)
      : nn::Module("BasicBlock"),
        conv1(register_module("conv1", nn::Conv2d(nn::Conv2dOptions(in_channels, out_channels, 3).stride(stride).padding(1).bias(false)))),
        bn1(register_module("bn1", nn::BatchNorm2d(out_channels))),
        conv2(register_module("conv2", nn::Conv2d(nn::Conv2dOptions(out_channels, out_channels, 3).padding(1).bias(false)))),
        bn2(register_module("bn2", nn::BatchNorm2d(out_channels))) {
    if (stride != 1 || in_channels != out_channels)
      shortcut = register_module("shortcut", nn::Sequential(nn::Conv2d(nn::Conv2dOptions(in_channels, out_channels, 1).stride(stride).bias(false)),
                                                            nn::BatchNorm2d(out_channels)));
  }

  /// x [N, in, H, W] -> [N, out, H / stride, W / stride].
  xg::Tensor forward(const xg::Tensor& x) {
    xg::Tensor out = xg::relu(bn1(conv1(x)));
    out = bn2(conv2(out));
    return xg::relu(out + (shortcut ? shortcut(x) : x));
  }

  nn::Conv2d conv1;
  nn::BatchNorm2d bn1;
  nn::Conv2d conv2;
  nn::BatchNorm2d bn2;
  nn::Sequential shortcut{nullptr};
};
XG_MODULE(BasicBlock);

/// The whole network: stem, three stages of one BasicBlock each, global average pooling, a linear classifier.
class ResNetImpl : public nn::Module {
 public:
  explicit ResNetImpl(int64_t width)
      : nn::Module("ResNet"),
        stem(register_module("stem", nn::Sequential(nn::Conv2d(nn::Conv2dOptions(1, width, 3).padding(1).bias(false)),
                                                    nn::BatchNorm2d(width), nn::ReLU(), nn::MaxPool2d(2)))),
        stage1(register_module("stage1", BasicBlock(width, width, 1))),
        stage2(register_module("stage2", BasicBlock(width, 2 * width, 2))),
        stage3(register_module("stage3", BasicBlock(2 * width, 4 * width, 2))),
        pool(register_module("pool", nn::AdaptiveAvgPool2d(1))),
        fc(register_module("fc", nn::Linear(4 * width, 10))) {}

  /// images [N, 1, 28, 28] -> logits [N, 10].
  xg::Tensor forward(const xg::Tensor& x) {
    xg::Tensor features = stage3(stage2(stage1(stem(x))));
    return fc(pool(features).flatten(1));
  }

  nn::Sequential stem;
  BasicBlock stage1, stage2, stage3;
  nn::AdaptiveAvgPool2d pool;
  nn::Linear fc;
};
XG_MODULE(ResNet);

}  // namespace

/// main's body: training::run_main reports any exception that leaves it and exits non-zero.
int example_main(int argc, char** argv) {
  CLI::App app{"Fashion-MNIST with a small ResNet built from user-defined residual blocks"};
  training::CommonOptions common;
  common.epochs = 4;
  common.batch_size = 128;
  common.lr = 2e-3;
  training::add_common_options(app, common);
  int64_t width = 16;
  app.add_option("--width", width, "Channels of the first stage (doubled at each later stage)")
      ->capture_default_str()
      ->check(training::size_range(256));
  CLI11_PARSE(app, argc, argv);
  if (width <= 0) {
    std::cerr << "error: --width must be positive\n";
    return 2;
  }
  training::apply_common_options(common, "resnet_fashion_mnist");

  const training::DataSplits data = training::load_fashion_mnist(common);
  const xg::data::transforms::Normalize normalize({0.2860}, {0.3530});
  xg::data::DataLoader train_loader(data.train, xg::data::DataLoaderOptions(common.batch_size).shuffle(true).seed(common.seed + 1),
                                    normalize);
  xg::data::DataLoader val_loader(data.val, xg::data::DataLoaderOptions(500), normalize);
  xg::data::DataLoader test_loader(data.test, xg::data::DataLoaderOptions(500), normalize);

  ResNet model(width);
  std::cout << model << "\n";
  xg::optim::AdamW optimizer(model->parameters(), xg::optim::AdamWOptions(common.lr));
  xg::optim::CosineAnnealingLR scheduler(optimizer, std::max<int64_t>(common.epochs, 1));

  training::TrainSetup setup;
  setup.name = "resnet_fashion_mnist";
  setup.model = model.ptr();
  setup.forward = [&](const xg::Tensor& x) { return model(x); };
  setup.optimizer = &optimizer;
  setup.scheduler = &scheduler;
  setup.train_loader = &train_loader;
  setup.val_loader = &val_loader;
  setup.test_loader = &test_loader;
  return training::fit(setup, common).exit_code();
}

int main(int argc, char** argv) { return training::run_main(argc, argv, example_main); }
