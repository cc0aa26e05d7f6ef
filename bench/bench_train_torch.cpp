// bench_train_torch: the libtorch worker of bench_train (bench_train.cpp runs both and compares).
// The same models, the same initial weights (bench_train_common.hpp), the same data and the same
// optimizer settings as the xgrad worker, written the way a PyTorch C++ user writes them.
//
//   bench_train_torch --worker --case NAME --threads N    (protocol: bench_train_common.hpp)
//   bench_train_torch --profile SECONDS --case NAME
//
// Gradients are cleared with module->zero_grad(/*set_to_none=*/true), xgrad's default and the
// cheaper of libtorch's two ways. Fashion-MNIST is read with a small idx reader below (zlib), so
// both processes train on the same 60,000 images, reshuffled every epoch.
#define BENCH_NO_NEW_COUNTER
#include <torch/torch.h>
#include <zlib.h>

#include <memory>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "bench_train_common.hpp"

namespace {

using bench::Clock;
using bench::train::Case;
using bench::train::make_step_worker;
using bench::train::Worker;

void set_initial_parameters(torch::nn::Module& model) {
  torch::NoGradGuard no_grad;
  size_t index = 0;
  for (torch::Tensor& p : model.parameters()) {
    std::vector<int64_t> shape(p.sizes().begin(), p.sizes().end());
    std::vector<float> values = bench::train::initial_parameter(index++, shape);
    TORCH_CHECK(p.is_contiguous() && p.numel() == static_cast<int64_t>(values.size()), "parameter layout");
    std::copy(values.begin(), values.end(), p.data_ptr<float>());
  }
}

std::string parameter_signature(torch::nn::Module& model) {
  int64_t tensors = 0, elements = 0;
  for (const torch::Tensor& p : model.parameters()) {
    ++tensors;
    elements += p.numel();
  }
  return "params=" + std::to_string(tensors) + "/" + std::to_string(elements);
}

torch::Tensor float_tensor(const std::vector<float>& values, std::vector<int64_t> shape) {
  return torch::from_blob(const_cast<float*>(values.data()), shape, torch::kFloat32).clone();
}
torch::Tensor label_tensor(const std::vector<int64_t>& labels) {
  return torch::from_blob(const_cast<int64_t*>(labels.data()), {static_cast<int64_t>(labels.size())}, torch::kInt64).clone();
}

torch::nn::Sequential mlp_sigmoid() {
  return torch::nn::Sequential(torch::nn::Linear(784, 30), torch::nn::Sigmoid(), torch::nn::Linear(30, 10), torch::nn::Sigmoid());
}
torch::nn::Sequential mlp_relu() {
  return torch::nn::Sequential(torch::nn::Linear(784, 100), torch::nn::ReLU(), torch::nn::Linear(100, 10));
}
torch::nn::Sequential lenet() {
  namespace nn = torch::nn;
  return nn::Sequential(nn::Conv2d(nn::Conv2dOptions(1, 32, 5).padding(2)), nn::ReLU(), nn::MaxPool2d(nn::MaxPool2dOptions(2)),
                        nn::Conv2d(nn::Conv2dOptions(32, 64, 5).padding(2)), nn::ReLU(), nn::MaxPool2d(nn::MaxPool2dOptions(2)),
                        nn::Flatten(), nn::Linear(3136, 1024), nn::ReLU(), nn::Dropout(0.5), nn::Linear(1024, 10));
}
torch::nn::Sequential small_cnn() {
  namespace nn = torch::nn;
  return nn::Sequential(nn::Conv2d(nn::Conv2dOptions(1, 8, 3)), nn::ReLU(), nn::MaxPool2d(nn::MaxPool2dOptions(2)),
                        nn::Conv2d(nn::Conv2dOptions(8, 16, 3)), nn::ReLU(), nn::MaxPool2d(nn::MaxPool2dOptions(2)), nn::Flatten(),
                        nn::Linear(400, 10));
}

struct LstmClassifierImpl : torch::nn::Module {
  LstmClassifierImpl() {
    lstm = register_module("lstm", torch::nn::LSTM(28, 128));
    head = register_module("head", torch::nn::Linear(128, 10));
  }
  /// x [T, N, 28] -> logits [N, 10] from the last hidden state.
  torch::Tensor forward(const torch::Tensor& x) {
    auto out = lstm->forward(x);
    torch::Tensor h_n = std::get<0>(std::get<1>(out));  // [1, N, 128]
    return head->forward(h_n.squeeze(0));
  }
  torch::nn::LSTM lstm{nullptr};
  torch::nn::Linear head{nullptr};
};
TORCH_MODULE(LstmClassifier);

// ---- idx reader (Fashion-MNIST, gzip'ed) ----------------------------------------------------------------
std::vector<uint8_t> read_gzip(const std::string& path) {
  gzFile file = gzopen(path.c_str(), "rb");
  if (!file) throw std::runtime_error("cannot open " + path);
  std::vector<uint8_t> bytes;
  std::vector<uint8_t> chunk(1 << 20);
  int got;
  while ((got = gzread(file, chunk.data(), static_cast<unsigned>(chunk.size()))) > 0) bytes.insert(bytes.end(), chunk.begin(), chunk.begin() + got);
  int error = 0;
  gzerror(file, &error);
  gzclose(file);
  if (got < 0 || (error != Z_OK && error != Z_STREAM_END)) throw std::runtime_error(path + ": corrupt gzip stream");
  return bytes;
}

uint32_t big_endian32(const std::vector<uint8_t>& b, size_t at) {
  if (at + 4 > b.size()) throw std::runtime_error("idx: truncated header");
  return (uint32_t(b[at]) << 24) | (uint32_t(b[at + 1]) << 16) | (uint32_t(b[at + 2]) << 8) | uint32_t(b[at + 3]);
}

/// images [N, 1, 28, 28] float32 in [0, 1], labels [N] int64.
std::pair<torch::Tensor, torch::Tensor> load_fashion_mnist_train(const std::string& root) {
  std::vector<uint8_t> images = read_gzip(root + "/train-images-idx3-ubyte.gz");
  std::vector<uint8_t> labels = read_gzip(root + "/train-labels-idx1-ubyte.gz");
  if (big_endian32(images, 0) != 0x803 || big_endian32(labels, 0) != 0x801) throw std::runtime_error("idx: bad magic");
  const int64_t n = big_endian32(images, 4), rows = big_endian32(images, 8), cols = big_endian32(images, 12);
  if (big_endian32(labels, 4) != n || images.size() != 16 + size_t(n * rows * cols) || labels.size() != 8 + size_t(n))
    throw std::runtime_error("idx: sizes do not match the headers");
  torch::Tensor x = torch::from_blob(images.data() + 16, {n, 1, rows, cols}, torch::kUInt8).to(torch::kFloat32).div_(255.0);
  torch::Tensor y = torch::from_blob(labels.data() + 8, {n}, torch::kUInt8).to(torch::kInt64);
  return {x, y};
}


Worker make_torch_worker(const Case& c) {
  torch::manual_seed(0);
  const std::string name = c.name;
  auto loss_value = std::make_shared<double>(0.0);
  namespace F = torch::nn::functional;

  if (name == "A_mlp" || name == "B_mlp_b64" || name == "B_mlp_b256") {
    const bool is_a = name == "A_mlp";
    const int64_t batch = is_a ? 10 : (name == "B_mlp_b64" ? 64 : 256);
    auto model = is_a ? mlp_sigmoid() : mlp_relu();
    set_initial_parameters(*model);
    std::shared_ptr<torch::optim::Optimizer> optimizer;
    if (is_a) optimizer = std::make_shared<torch::optim::SGD>(model->parameters(), torch::optim::SGDOptions(3.0));
    else optimizer = std::make_shared<torch::optim::SGD>(model->parameters(), torch::optim::SGDOptions(0.05).momentum(0.9));
    torch::Tensor x = float_tensor(bench::train::synthetic_inputs(batch * 784, 1), {batch, 784});
    torch::Tensor y = label_tensor(bench::train::synthetic_labels(batch, 2));
    torch::Tensor target = F::one_hot(y, 10).to(torch::kFloat32);
    auto step = [=]() mutable {
      model->zero_grad(true);
      torch::Tensor out = model->forward(x);
      torch::Tensor loss = is_a ? F::mse_loss(out, target) : F::cross_entropy(out, y);
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
    auto optimizer = std::make_shared<torch::optim::Adam>(model->parameters(), torch::optim::AdamOptions(1e-3));
    torch::Tensor x = float_tensor(bench::train::synthetic_inputs(batch * 784, 1), {batch, 1, 28, 28});
    torch::Tensor y = label_tensor(bench::train::synthetic_labels(batch, 2));
    auto step = [=]() mutable {
      model->zero_grad(true);
      torch::Tensor loss = F::cross_entropy(model->forward(x), y);
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
    auto optimizer = std::make_shared<torch::optim::Adam>(model->parameters(), torch::optim::AdamOptions(1e-3));
    torch::Tensor x = float_tensor(bench::train::synthetic_inputs(seq * batch * 28, 1), {seq, batch, 28});
    torch::Tensor y = label_tensor(bench::train::synthetic_labels(batch, 2));
    auto step = [=]() mutable {
      model->zero_grad(true);
      torch::Tensor loss = F::cross_entropy(model->forward(x), y);
      loss.backward();
      optimizer->step();
      *loss_value = loss.item<float>();
    };
    return make_step_worker(c, step, loss_value, parameter_signature(*model));
  }
  if (name == "F_batchnorm") {
    auto bn = torch::nn::BatchNorm2d(32);
    const size_t n = 64 * 32 * 14 * 14;
    torch::Tensor x = float_tensor(bench::train::synthetic_inputs(n, 1), {64, 32, 14, 14}).requires_grad_();
    torch::Tensor grad_output = float_tensor(bench::train::uniform_values(n, -1.f, 1.f, 3), {64, 32, 14, 14});
    auto step = [=]() mutable {
      bn->zero_grad(true);
      x.mutable_grad() = torch::Tensor();
      torch::Tensor out = bn->forward(x);
      out.backward(grad_output);
      *loss_value = bn->weight.grad()[0].item<float>();
    };
    return make_step_worker(c, step, loss_value, parameter_signature(*bn));
  }
  if (name == "G_epoch_mlp" || name == "G_epoch_cnn") {
    const bool cnn = name == "G_epoch_cnn";
    auto load_start = Clock::now();
    auto [images, labels] = load_fashion_mnist_train(bench::train::fashion_mnist_root());
    const double load_seconds = bench::seconds_since(load_start);
    auto model = cnn ? small_cnn() : mlp_relu();
    set_initial_parameters(*model);
    std::shared_ptr<torch::optim::Optimizer> optimizer;
    if (cnn) optimizer = std::make_shared<torch::optim::Adam>(model->parameters(), torch::optim::AdamOptions(1e-3));
    else optimizer = std::make_shared<torch::optim::SGD>(model->parameters(), torch::optim::SGDOptions(0.05).momentum(0.9));
    auto generator = std::make_shared<at::Generator>(at::detail::createCPUGenerator(7));
    Worker w;
    w.run_rep = [=]() mutable {
      auto t0 = Clock::now();
      const int64_t n = images.size(0), batch_size = 64;
      torch::Tensor order = torch::randperm(n, *generator, torch::kInt64);
      double total = 0;
      int64_t batches = 0;
      for (int64_t start = 0; start < n; start += batch_size) {
        torch::Tensor index = order.slice(0, start, std::min(n, start + batch_size));
        torch::Tensor input = images.index_select(0, index);
        torch::Tensor target = labels.index_select(0, index);
        if (!cnn) input = input.flatten(1);
        model->zero_grad(true);
        torch::Tensor loss = F::cross_entropy(model->forward(input), target);
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

}  // namespace

int main(int argc, char** argv) {
  bench::train::WorkerArgs args;
  try {
    if (!bench::train::parse_worker_args(argc, argv, args) || (!args.worker && args.profile <= 0)) {
      std::fprintf(stderr, "usage: %s --worker --case NAME --threads N | --profile SECONDS --case NAME\n", argv[0]);
      return 2;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_train_torch: %s\n", e.what());
    return 2;
  }
  at::set_num_threads(args.threads);
  const Case* c = bench::train::find_case(args.case_name);
  if (!c) {
    std::fprintf(stderr, "bench_train_torch: unknown case '%s'\n", args.case_name.c_str());
    return 2;
  }
  try {
    Worker w = make_torch_worker(*c);
    if (args.profile > 0) return bench::train::profile_worker(w, *c, args.profile);
    return bench::train::serve(w, *c, args.warmup);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_train_torch worker (%s): error: %s\n", c->name, e.what());
    return 1;
  }
}
