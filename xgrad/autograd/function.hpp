#pragma once
/// User-defined differentiable ops, as torch::autograd::Function:
///
///   struct MulConstant : xg::autograd::Function<MulConstant> {
///     static xg::Tensor forward(xg::autograd::AutogradContext* ctx, xg::Tensor x, double c) {
///       ctx->saved_data["c"] = c;
///       return x * c;
///     }
///     static xg::TensorList backward(xg::autograd::AutogradContext* ctx, xg::TensorList grad_outputs) {
///       return {grad_outputs[0] * ctx->saved_data["c"].toDouble(), xg::Tensor()};
///     }
///   };
///   xg::Tensor y = MulConstant::apply(x, 2.0);
///
/// forward runs with recording off; backward gets one gradient per output and returns one per
/// forward argument (undefined for non-tensor arguments). A backward written with xgrad ops is
/// itself recorded under create_graph, so gradgradcheck works on custom ops too.
#include <algorithm>
#include <map>
#include <string>
#include <type_traits>
#include <variant>

#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/autograd/node.hpp"

namespace xg::autograd {

/// A value kept in AutogradContext::saved_data.
class SavedValue {
 public:
  SavedValue() = default;
  SavedValue(double v) : value_(v) {}                 // NOLINT
  SavedValue(int64_t v) : value_(v) {}                // NOLINT
  SavedValue(int v) : value_(int64_t{v}) {}           // NOLINT
  SavedValue(bool v) : value_(v) {}                   // NOLINT
  SavedValue(std::vector<int64_t> v) : value_(std::move(v)) {}  // NOLINT
  SavedValue(std::string v) : value_(std::move(v)) {}           // NOLINT
  SavedValue(Tensor v) : value_(std::move(v)) {}                // NOLINT
  double toDouble() const;
  int64_t toInt() const;
  bool toBool() const;
  const std::vector<int64_t>& toIntVector() const;
  const std::string& toStringRef() const;
  const Tensor& toTensor() const;

 private:
  std::variant<std::monostate, double, int64_t, bool, std::vector<int64_t>, std::string, Tensor> value_;
};

/// What forward and backward of a custom Function share.
class AutogradContext {
 public:
  /// Tensors needed by backward (inputs or outputs); checked for in-place changes when unpacked.
  void save_for_backward(const TensorList& tensors);
  /// The tensors given to save_for_backward, in order.
  TensorList get_saved_variables() const;
  /// Marks outputs as not differentiable (e.g. indices).
  void mark_non_differentiable(const TensorList& outputs);
  /// Whether forward input i (counting tensor arguments only) needs a gradient.
  bool needs_input_grad(size_t i) const;
  /// Non-tensor values for backward.
  std::map<std::string, SavedValue> saved_data;

  // used by Function<T>::apply
  TensorList to_save_;
  std::vector<SavedTensor> saved_;
  std::vector<TensorImpl*> non_differentiable_;
  std::weak_ptr<Node> node_;
  std::vector<bool> needs_input_grad_;
  bool released_ = false;
  std::string name_;
};

/// The node recorded for a custom Function T.
template <class T>
class CustomFunctionNode final : public Node {
 public:
  TensorList apply(TensorList&& grad_outputs) override {
    for (size_t i = 0; i < grad_outputs.size(); ++i)
      if (!grad_outputs[i].defined()) grad_outputs[i] = zeros(output_shapes[i], output_dtypes[i]);
    TensorList grads = T::backward(&ctx, std::move(grad_outputs));
    // Undefined gradients past the forward's arguments are dropped, as libtorch does: backward may
    // return one for an optional argument the call left out (PyTorch's LinearFunction example).
    if (grads.size() > argument_count &&
        std::none_of(grads.begin() + argument_count, grads.end(), [](const Tensor& g) { return g.defined(); }))
      grads.resize(argument_count);
    // backward returns one gradient per forward argument; keep the tensor arguments' ones.
    TensorList result;
    if (grads.size() == tensor_argument_positions.size()) return grads;
    XG_CHECK(grads.size() == argument_count,
             "{}: backward returned {} gradients, expected {} (one per forward argument)", name(), grads.size(), argument_count);
    for (size_t position : tensor_argument_positions) result.push_back(grads[position]);
    return result;
  }
  std::string name() const override { return ctx.name_.empty() ? "CustomFunctionBackward" : ctx.name_; }
  void release_saved() override {
    for (SavedTensor& s : ctx.saved_) s.release();
  }
  AutogradContext ctx;
  std::vector<Shape> output_shapes;
  std::vector<Dtype> output_dtypes;
  std::vector<size_t> tensor_argument_positions;
  size_t argument_count = 0;
};

namespace detail_function {
inline void collect(std::vector<Tensor>&, std::vector<size_t>&, size_t) {}
template <class First, class... Rest>
void collect(std::vector<Tensor>& tensors, std::vector<size_t>& positions, size_t position, const First& first, const Rest&... rest) {
  if constexpr (std::is_same_v<std::decay_t<First>, Tensor>) {
    tensors.push_back(first);
    positions.push_back(position);
  }
  collect(tensors, positions, position + 1, rest...);
}
inline TensorList as_list(const Tensor& t) { return {t}; }
inline TensorList as_list(const TensorList& t) { return t; }
}  // namespace detail_function

/// CRTP base: define static forward(AutogradContext*, args...) and backward(AutogradContext*, TensorList).
template <class T>
struct Function {
  template <class... Args>
  static auto apply(Args&&... args) {
    auto node = std::make_shared<CustomFunctionNode<T>>();
    TensorList inputs;
    detail_function::collect(inputs, node->tensor_argument_positions, 0, args...);
    node->argument_count = sizeof...(Args);
    const bool recording = should_record(inputs);
    decltype(T::forward(&node->ctx, std::forward<Args>(args)...)) result;
    {
      NoGradGuard no_grad;
      result = T::forward(&node->ctx, std::forward<Args>(args)...);
    }
    if (!recording) return result;
    TensorList outputs = detail_function::as_list(result);
    node->set_inputs(inputs);
    node->set_num_outputs(static_cast<uint32_t>(outputs.size()));
    node->ctx.node_ = node;
    for (size_t i = 0; i < inputs.size(); ++i) node->ctx.needs_input_grad_.push_back(node->needs_input_grad(i));
    for (uint32_t i = 0; i < outputs.size(); ++i) {
      Tensor& out = outputs[i];
      // An output that is an input returned as is becomes a new view of it, so the input's history
      // stays; such a view, like any view a Function returns, may not be modified in place (PyTorch).
      for (const Tensor& in : inputs)
        if (out.is_same(in)) {
          auto alias = xg::detail::alias(in, false);
          alias->view_base = in.impl()->view_base ? in.impl()->view_base : in.impl();
          alias->view_version = in.impl()->storage->version;
          out = Tensor(std::move(alias));
        }
      if (out.is_view()) {
        out.impl()->creation_meta = CreationMeta::InCustomFunction;
        out.impl()->view_version = out.impl()->storage->version;
      }
      node->output_shapes.push_back(out.shape());
      node->output_dtypes.push_back(out.dtype());
      bool differentiable = out.is_floating_point() &&
                            std::find(node->ctx.non_differentiable_.begin(), node->ctx.non_differentiable_.end(), out.impl().get()) ==
                                node->ctx.non_differentiable_.end();
      if (!differentiable) continue;
      out.impl()->requires_grad = true;
      out.impl()->grad_fn = node;
      out.impl()->output_nr = i;
    }
    for (const Tensor& s : node->ctx.to_save_) {
      bool is_output = false;
      for (const Tensor& out : outputs) is_output = is_output || s.is_same(out);
      node->ctx.saved_.emplace_back(s, is_output);
    }
    node->ctx.to_save_.clear();
    if constexpr (std::is_same_v<decltype(result), Tensor>) return outputs[0];
    else return outputs;
  }
};

}  // namespace xg::autograd
