#pragma once
/// Data transforms in libtorch's design (torch::data::transforms), for dataset.map(...):
///   BatchTransform<In, Out>   apply_batch(In) -> Out, on a whole batch
///   Transform<In, Out>        apply(In) -> Out, on each example of a std::vector batch
///   Lambda, BatchLambda       either from a function
///   Stack<>                   collates std::vector<Example<>> into one Example<> (torch::stack of data and of targets)
///   TensorTransform<Target>   a function of an example's data tensor; TensorLambda, Normalize, and the
///                             augmentations RandomTranslate and RandomHorizontalFlip are of this kind
///
/// Random transforms draw from data::batch_generator(): a loader seeds it for each batch from its own
/// generator on the calling thread, so augmentation is reproducible whatever the number of workers.
/// Normalize, RandomTranslate, RandomHorizontalFlip and Compose also keep the form the classic
/// xg::data::DataLoader takes, (batch [N, C, H, W], generator) -> batch.
#include <functional>
#include <random>
#include <utility>
#include <vector>

#include "xgrad/autograd/array_ref.hpp"
#include "xgrad/data/batch_generator.hpp"
#include "xgrad/data/dataloader.hpp"
#include "xgrad/data/example.hpp"

namespace xg::data::transforms {

template <class InputBatch, class OutputBatch>
class BatchTransform {
 public:
  using InputBatchType = InputBatch;
  using OutputBatchType = OutputBatch;
  virtual ~BatchTransform() = default;
  virtual OutputBatch apply_batch(InputBatch input_batch) = 0;
};

template <class Input, class Output>
class Transform : public BatchTransform<std::vector<Input>, std::vector<Output>> {
 public:
  using InputType = Input;
  using OutputType = Output;
  virtual Output apply(Input input) = 0;
  std::vector<Output> apply_batch(std::vector<Input> input_batch) override {
    std::vector<Output> output;
    output.reserve(input_batch.size());
    for (Input& input : input_batch) output.push_back(apply(std::move(input)));
    return output;
  }
};

template <class Input, class Output = Input>
class BatchLambda : public BatchTransform<Input, Output> {
 public:
  using FunctionType = std::function<Output(Input)>;
  explicit BatchLambda(FunctionType function) : function_(std::move(function)) {
    XG_CHECK(static_cast<bool>(function_), "BatchLambda: the function is empty");
  }
  Output apply_batch(Input input_batch) override { return function_(std::move(input_batch)); }

 private:
  FunctionType function_;
};

template <class Input, class Output = Input>
class Lambda : public Transform<Input, Output> {
 public:
  using FunctionType = std::function<Output(Input)>;
  explicit Lambda(FunctionType function) : function_(std::move(function)) {
    XG_CHECK(static_cast<bool>(function_), "Lambda: the function is empty");
  }
  Output apply(Input input) override { return function_(std::move(input)); }

 private:
  FunctionType function_;
};

/// A transform from a batch of examples to one collated example.
template <class T = Example<>, class BatchType = std::vector<T>>
using Collation = BatchTransform<BatchType, T>;
/// A Collation from a function.
template <class T = Example<>, class BatchType = std::vector<T>>
using Collate = BatchLambda<BatchType, T>;

/// Stacks the examples of a batch: Example<>{stack(data), stack(target)}, or TensorExample{stack(data)}.
template <class T = Example<>>
struct Stack;

template <>
struct Stack<Example<>> : public Collation<Example<>> {
  Example<> apply_batch(std::vector<Example<>> examples) override;
};

template <>
struct Stack<TensorExample> : public Collation<TensorExample> {
  TensorExample apply_batch(std::vector<TensorExample> examples) override;
};

/// A transform of an example's data tensor (the target passes through).
template <class Target = Tensor>
class TensorTransform : public Transform<Example<Tensor, Target>, Example<Tensor, Target>> {
 public:
  using E = Example<Tensor, Target>;
  virtual Tensor operator()(Tensor input) = 0;
  E apply(E input) override {
    input.data = (*this)(std::move(input.data));
    return input;
  }
};

template <class Target = Tensor>
class TensorLambda : public TensorTransform<Target> {
 public:
  using FunctionType = std::function<Tensor(Tensor)>;
  explicit TensorLambda(FunctionType function) : function_(std::move(function)) {
    XG_CHECK(static_cast<bool>(function_), "TensorLambda: the function is empty");
  }
  Tensor operator()(Tensor input) override { return function_(std::move(input)); }

 private:
  FunctionType function_;
};

namespace detail {
/// Normalize's work: checks and computes (x - mean) / stddev with PyTorch's broadcasting of [C, 1, 1].
class Normalization {
 public:
  Normalization(ArrayRef<double> mean, ArrayRef<double> stddev);
  Tensor operator()(const Tensor& input) const;
  /// mean and stddev as libtorch keeps them: float32 [C, 1, 1].
  Tensor mean_tensor() const;
  Tensor stddev_tensor() const;

 private:
  std::vector<float> mean_, stddev_;
};
}  // namespace detail

/// (x - mean[c]) / stddev[c] over the channel dimension of [..., C, H, W] data (one value applies to
/// every channel), as torch::data::transforms::Normalize: mean and stddev are float32 [C, 1, 1]
/// (members `mean`, `stddev`) and broadcast against the input, so [H, W] data with one value becomes
/// [1, H, W]. Differentiable when the input requires grad.
template <class Target = Tensor>
struct Normalize : public TensorTransform<Target> {
  Normalize(ArrayRef<double> mean, ArrayRef<double> stddev)
      : normalization_(mean, stddev), mean(normalization_.mean_tensor()), stddev(normalization_.stddev_tensor()) {}
  Tensor operator()(Tensor input) override { return normalization_(input); }
  /// The classic DataLoader's batch-transform form.
  Tensor operator()(const Tensor& batch, std::mt19937_64&) const { return normalization_(batch); }

 private:
  detail::Normalization normalization_;

 public:
  Tensor mean, stddev;
};

/// Shifts each image by a random whole number of pixels in [-max_shift, max_shift] along both axes,
/// filling with `fill`. Data: one image [C, H, W] or a batch [N, C, H, W] (each image its own shift).
struct RandomTranslate : public TensorTransform<> {
  explicit RandomTranslate(int64_t max_shift, double fill = 0.0);
  Tensor operator()(Tensor input) override { return (*this)(input, batch_generator()); }
  Tensor operator()(const Tensor& images, std::mt19937_64& generator) const;
  int64_t max_shift;
  double fill = 0.0;
};

/// Mirrors each image left-right with probability p. Data: [C, H, W] or [N, C, H, W].
struct RandomHorizontalFlip : public TensorTransform<> {
  explicit RandomHorizontalFlip(double p = 0.5);
  Tensor operator()(Tensor input) override { return (*this)(input, batch_generator()); }
  Tensor operator()(const Tensor& images, std::mt19937_64& generator) const;
  double p;
};

/// Applies the classic DataLoader's batch transforms in order.
struct Compose {
  std::vector<data::BatchTransform> transforms;
  explicit Compose(std::vector<data::BatchTransform> transforms) : transforms(std::move(transforms)) {}
  Tensor operator()(const Tensor& batch, std::mt19937_64& generator) const;
};

}  // namespace xg::data::transforms
