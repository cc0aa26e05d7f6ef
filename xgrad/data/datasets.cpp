#include "xgrad/data/datasets.hpp"

#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/autograd/ops.hpp"
#include "xgrad/data/dataset.hpp"

namespace xg::data::datasets {

TensorDataset::TensorDataset(Tensor t) : tensor(std::move(t)) {
  XG_CHECK(tensor.defined() && tensor.dim() >= 1, "TensorDataset: expected a tensor with a leading example dimension, got {}",
           tensor.defined() ? "shape " + shape_string(tensor.shape()) : std::string("an undefined tensor"));
}

TensorDataset::TensorDataset(const std::vector<Tensor>& tensors)
    : TensorDataset([&] {
        XG_CHECK(!tensors.empty(), "TensorDataset: expected at least one tensor to stack, got none");
        return stack(tensors);
      }()) {}

TensorExample TensorDataset::get(size_t index) {
  XG_CHECK(index < static_cast<size_t>(tensor.size(0)), "TensorDataset::get: index {} is out of range for {} examples", index,
           tensor.size(0));
  return TensorExample(tensor[static_cast<int64_t>(index)]);
}

MNIST::MNIST(const std::string& root, Mode mode) : train_(mode == Mode::kTrain) {
  std::tie(images_, targets_) = data::detail::read_mnist(root, train_);
}

Example<> MNIST::get(size_t index) {
  XG_CHECK(index < static_cast<size_t>(images_.size(0)), "MNIST::get: index {} is out of range for {} examples", index, images_.size(0));
  const auto i = static_cast<int64_t>(index);
  return {images_[i], targets_[i]};
}

}  // namespace xg::data::datasets
