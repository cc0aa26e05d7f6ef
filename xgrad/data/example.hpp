#pragma once
/// xg::data::Example: one training example (or a collated batch) as libtorch spells it,
/// `Example<Data = Tensor, Target = Tensor>` with members `data` and `target`. `TensorExample` is an
/// example without a target (Example<Tensor, example::NoTarget>, member `data` only).
#include <utility>

#include "xgrad/autograd/tensor.hpp"

namespace xg::data {

namespace example {
/// Target type of an example that has none.
using NoTarget = void;
}  // namespace example

template <class Data = Tensor, class Target = Tensor>
struct Example {
  using DataType = Data;
  using TargetType = Target;
  Example() = default;
  Example(Data data, Target target) : data(std::move(data)), target(std::move(target)) {}
  Data data;
  Target target;
};

template <class Data>
struct Example<Data, example::NoTarget> {
  using DataType = Data;
  using TargetType = example::NoTarget;
  Example() = default;
  /* implicit */ Example(Data data) : data(std::move(data)) {}
  /// Lets a TensorExample stand where its Tensor is expected, as in libtorch.
  operator Data&() { return data; }
  operator const Data&() const { return data; }
  Data data;
};

using TensorExample = Example<Tensor, example::NoTarget>;

}  // namespace xg::data
