// Module hooks: forward pre-hooks, forward hooks and full backward hooks (PyTorch's nn.Module hooks).
//
// A full backward hook needs the gradients w.r.t. the module's inputs and output together. As PyTorch's
// BackwardHookFunction does, the inputs are passed through an identity node before forward and the output
// through another after it: the output node's backward sees grad_output (and keeps it), the input node's
// backward sees grad_input and calls the hooks, whose answer becomes the gradient that flows on.
#include <map>

#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/autograd/node.hpp"
#include "xgrad/nn/module.hpp"

namespace xg::nn {

namespace module_detail {
struct ModuleHooks {
  uint64_t next_id = 1;
  std::map<uint64_t, Module::ForwardPreHook> pre;  // ordered by id: registration order
  std::map<uint64_t, Module::ForwardHook> forward;
  std::map<uint64_t, Module::BackwardHook> backward;
  bool empty() const { return pre.empty() && forward.empty() && backward.empty(); }
};

namespace {
/// An identity node whose backward is a function.
class HookIdentityNode final : public autograd::Node {
 public:
  HookIdentityNode(std::string label, std::function<TensorList(TensorList&&)> on_backward)
      : label_(std::move(label)), on_backward_(std::move(on_backward)) {}
  TensorList apply(TensorList&& grads) override { return on_backward_(std::move(grads)); }
  std::string name() const override { return label_; }

 private:
  std::string label_;
  std::function<TensorList(TensorList&&)> on_backward_;
};

/// `tensors` passed through `node`: each that requires grad comes back as a view of itself whose grad_fn is
/// the node (as a custom Function's input returned as is); the others come back unchanged.
TensorList through(const std::shared_ptr<HookIdentityNode>& node, const TensorList& tensors) {
  node->set_inputs(tensors);
  node->set_num_outputs(static_cast<uint32_t>(tensors.size()));
  TensorList out = tensors;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& in = tensors[i];
    if (!in.defined() || !in.requires_grad()) continue;
    auto alias = xg::detail::alias(in, false);
    alias->view_base = in.impl()->view_base ? in.impl()->view_base : in.impl();
    alias->view_version = in.impl()->storage->version;
    alias->creation_meta = CreationMeta::InCustomFunction;
    alias->requires_grad = true;
    alias->grad_fn = node;
    alias->output_nr = static_cast<uint32_t>(i);
    out[i] = Tensor(std::move(alias));
  }
  return out;
}

/// One call's backward-hook bookkeeping, shared by its two identity nodes.
struct BackwardHookCall {
  Module* module = nullptr;
  std::shared_ptr<Module> keep_alive;  // the graph keeps the module alive, as a Python closure would
  std::vector<Module::BackwardHook> hooks;
  std::vector<Shape> input_shapes;
  TensorList grad_outputs;
  bool inputs_recorded = false;

  TensorList run_hooks(TensorList grad_input) {
    for (const Module::BackwardHook& hook : hooks) {
      std::optional<TensorList> replaced = hook(*module, grad_input, grad_outputs);
      if (!replaced) continue;
      XG_CHECK(replaced->size() == grad_input.size(), "{}: a full backward hook returned {} gradients; the forward has {} tensor inputs",
               module->name(), replaced->size(), grad_input.size());
      for (size_t i = 0; i < replaced->size(); ++i)
        XG_CHECK(!(*replaced)[i].defined() || (*replaced)[i].shape() == input_shapes[i],
                 "{}: a full backward hook returned a gradient of shape {} for input {} of shape {}", module->name(),
                 shape_string((*replaced)[i].shape()), i, shape_string(input_shapes[i]));
      grad_input = std::move(*replaced);
    }
    return grad_input;
  }
};
}  // namespace
}  // namespace module_detail

void RemovableHandle::remove() {
  if (auto hooks = hooks_.lock()) {
    hooks->pre.erase(id_);
    hooks->forward.erase(id_);
    hooks->backward.erase(id_);
  }
  hooks_.reset();
}

bool RemovableHandle::active() const {
  auto hooks = hooks_.lock();
  return hooks && (hooks->pre.count(id_) || hooks->forward.count(id_) || hooks->backward.count(id_));
}

namespace {
template <class Map, class Hook>
uint64_t add_hook(std::shared_ptr<module_detail::ModuleHooks>& hooks, Map module_detail::ModuleHooks::*map, Hook hook, const std::string& module,
                  const char* kind) {
  XG_CHECK(static_cast<bool>(hook), "{}: register_{}: the hook is empty", module, kind);
  if (!hooks) hooks = std::make_shared<module_detail::ModuleHooks>();
  const uint64_t id = hooks->next_id++;
  ((*hooks).*map).emplace(id, std::move(hook));
  return id;
}
}  // namespace

RemovableHandle Module::register_forward_pre_hook(ForwardPreHook hook) {
  const uint64_t id = add_hook(hooks_, &module_detail::ModuleHooks::pre, std::move(hook), name(), "forward_pre_hook");
  return RemovableHandle(hooks_, id);
}

RemovableHandle Module::register_forward_hook(ForwardHook hook) {
  const uint64_t id = add_hook(hooks_, &module_detail::ModuleHooks::forward, std::move(hook), name(), "forward_hook");
  return RemovableHandle(hooks_, id);
}

RemovableHandle Module::register_full_backward_hook(BackwardHook hook) {
  const uint64_t id = add_hook(hooks_, &module_detail::ModuleHooks::backward, std::move(hook), name(), "full_backward_hook");
  return RemovableHandle(hooks_, id);
}

bool Module::has_hooks() const { return hooks_ && !hooks_->empty(); }

void Module::reject_hooks(const char* why) const {
  XG_ERROR("{}: has module hooks, but {}; hooks need forward(Tensor, ...) -> Tensor", name(), why);
}

Tensor Module::forward_with_hooks(TensorList inputs, const std::function<Tensor(const TensorList&)>& forward) {
  const std::shared_ptr<module_detail::ModuleHooks> hooks = hooks_;  // a hook may remove hooks while they run
  std::vector<ForwardPreHook> pre;
  std::vector<ForwardHook> post;
  std::vector<BackwardHook> backward;
  for (const auto& entry : hooks->pre) pre.push_back(entry.second);
  for (const auto& entry : hooks->forward) post.push_back(entry.second);
  for (const auto& entry : hooks->backward) backward.push_back(entry.second);

  for (const ForwardPreHook& hook : pre) {
    std::optional<TensorList> replaced = hook(*this, inputs);
    if (!replaced) continue;
    XG_CHECK(replaced->size() == inputs.size(), "{}: a forward pre-hook returned {} inputs; forward takes {}", name(), replaced->size(),
             inputs.size());
    inputs = std::move(*replaced);
  }

  std::shared_ptr<module_detail::BackwardHookCall> call;
  if (!backward.empty() && autograd::GradMode::is_enabled()) {
    call = std::make_shared<module_detail::BackwardHookCall>();
    call->module = this;
    call->keep_alive = weak_from_this().lock();
    call->hooks = std::move(backward);
    for (const Tensor& in : inputs) call->input_shapes.push_back(in.defined() ? in.shape() : Shape{});
    if (autograd::should_record(inputs)) {
      call->inputs_recorded = true;
      auto node = std::make_shared<module_detail::HookIdentityNode>(
          "BackwardHookFunctionBackward", [call](TensorList&& grads) { return call->run_hooks(std::move(grads)); });
      inputs = module_detail::through(node, inputs);
    }
  }

  Tensor output = forward(inputs);
  for (const ForwardHook& hook : post)
    if (std::optional<Tensor> replaced = hook(*this, inputs, output)) output = std::move(*replaced);

  if (call && output.defined() && output.requires_grad()) {
    auto node = std::make_shared<module_detail::HookIdentityNode>("BackwardHookFunctionBackward", [call](TensorList&& grads) {
      call->grad_outputs = grads;
      // No input needs a gradient: the hooks run now, with undefined grad_input (PyTorch: None).
      if (!call->inputs_recorded) call->run_hooks(TensorList(call->input_shapes.size()));
      return std::move(grads);
    });
    output = module_detail::through(node, {output})[0];
  }
  return output;
}

}  // namespace xg::nn
