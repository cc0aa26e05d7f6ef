#pragma once
/// The backward engine: walks the tape from the outputs in reverse topological order, iteratively
/// (a dependency count per node, as PyTorch's engine does), and delivers gradients.
#include <optional>

#include "xgrad/autograd/node.hpp"

namespace xg::autograd {

/// Accumulates d(sum of outputs * grad_outputs)/d(leaf) into every leaf's .grad().
/// grad_outputs may be empty (then every output must have one element) or hold undefined entries.
/// retain_graph defaults to create_graph.
void backward(const TensorList& outputs, const TensorList& grad_outputs = {},
              std::optional<bool> retain_graph = std::nullopt, bool create_graph = false);

/// Returns d(sum of outputs * grad_outputs)/d(input) for each input without touching .grad().
/// With create_graph the result is itself differentiable (for Hessian-vector products, penalties).
/// An input the outputs do not depend on is an error unless allow_unused (then it gets undefined).
TensorList grad(const TensorList& outputs, const TensorList& inputs, const TensorList& grad_outputs = {},
                std::optional<bool> retain_graph = std::nullopt, bool create_graph = false,
                bool allow_unused = false);

}  // namespace xg::autograd
