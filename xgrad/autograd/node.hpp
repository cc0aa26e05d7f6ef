#pragma once
/// The tape: each differentiable op that saw an input requiring grad records one Node. A Node knows
/// its inputs (edges to their nodes, or to the leaves to accumulate into), what it saved from the
/// forward pass, and how to turn output gradients into input gradients.
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/autograd/tensor.hpp"

namespace xg::autograd {

class Node;

/// Where an input's gradient goes: the node that produced it (and which of its outputs), or a leaf.
struct Edge {
  std::shared_ptr<Node> node;
  std::shared_ptr<TensorImpl> leaf;
  uint32_t output_nr = 0;
  bool valid() const { return node != nullptr || leaf != nullptr; }
};

/// What a node remembers of an input: for reducing broadcast gradients and checking their type.
/// The sizes are kept as the container holds them (inline up to 4 dims: no heap allocation per input).
struct InputMeta {
  Sizes sizes;
  Dtype dtype = kFloat32;
  Shape shape() const { return Shape(sizes.begin(), sizes.end()); }
};

/// The tape's per-node lists come from the small-object pool.
using EdgeList = std::vector<Edge, PoolAllocator<Edge>>;
using InputMetaList = std::vector<InputMeta, PoolAllocator<InputMeta>>;

/// A tensor kept for backward. Remembers the version it was saved at, so an in-place change made
/// afterwards is reported instead of silently giving a wrong gradient. An output of the node itself
/// is kept without its grad_fn (that would be a reference cycle) and re-attached when unpacked.
class SavedTensor {
 public:
  SavedTensor() = default;
  SavedTensor(const Tensor& tensor, bool is_output);
  /// The saved tensor; `node` is the owner (re-attached as grad_fn of a saved output).
  Tensor unpack(const std::shared_ptr<Node>& node, const char* op_name) const;
  void release();
  bool defined() const { return defined_; }
  /// True when this is an output of the node that saved it (unpack re-attaches the node).
  bool is_output() const { return is_output_; }

 private:
  Tensor tensor_;                      // for inputs: the tensor itself
  std::shared_ptr<Storage> storage_;   // for outputs: the data and its geometry, without the output's
  Sizes sizes_, strides_;              // grad_fn (a reference cycle); unpack makes a tensor of them.
  int64_t offset_ = 0;                 // Views are kept the same way (see the constructor),
  std::shared_ptr<Node> view_grad_fn_; // with the grad_fn they had when saved.
  uint64_t saved_version_ = 0;
  uint32_t output_nr_ = 0;
  bool is_output_ = false;
  bool requires_grad_ = false;
  bool defined_ = false;
  bool released_ = false;
};

/// One recorded operation.
class Node : public std::enable_shared_from_this<Node> {
 public:
  Node();
  virtual ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  /// Output gradients (one per output, undefined where none flowed) -> input gradients (one per
  /// edge, undefined where the input needs none).
  virtual TensorList apply(TensorList&& grad_outputs) = 0;
  /// Op name, e.g. "MulBackward".
  virtual std::string name() const = 0;
  /// Frees saved tensors (after a backward without retain_graph).
  virtual void release_saved() {}

  const EdgeList& next_edges() const { return next_edges_; }
  const InputMetaList& input_meta() const { return input_meta_; }
  uint32_t num_outputs() const { return num_outputs_; }
  uint64_t sequence_nr() const { return sequence_nr_; }
  /// True when input i needs a gradient (has an edge).
  bool needs_input_grad(size_t i) const { return i < next_edges_.size() && next_edges_[i].valid(); }

  /// Hooks on the gradient of output `output_nr` before this node runs (non-leaf tensor hooks).
  unsigned add_pre_hook(uint32_t output_nr, TensorHook hook);
  void remove_pre_hook(unsigned handle);
  const std::vector<std::tuple<unsigned, uint32_t, TensorHook>>& pre_hooks() const { return pre_hooks_; }
  /// Weak references to non-leaf tensors that asked retain_grad(), per output.
  std::vector<std::pair<uint32_t, std::weak_ptr<TensorImpl>>> retained;
  /// Set by ops that are piecewise linear in their input (relu, abs, leaky_relu, max and average
  /// pooling): their backward's derivative w.r.t. the input is zero. PyTorch's formulas for them take
  /// the input (threshold_backward(grad, result), avg_pool2d_backward(grad, self), ...), so under
  /// create_graph their gradient requires grad and a second grad() gives zeros; the engine links each
  /// input gradient to the input through that zero (see engine.cpp) instead of every op doing it.
  bool piecewise_linear = false;

  /// Shapes of the forward inputs, for error messages ("recorded by mul on [2, 3] and [3]").
  std::string forward_description() const;

  /// Connects the node to its inputs (called once, when recording).
  void set_inputs(const TensorList& inputs) { set_inputs(inputs.data(), inputs.size()); }
  void set_inputs(const Tensor* inputs, size_t count);
  void set_num_outputs(uint32_t n) { num_outputs_ = n; }

  /// The engine's per-pass bookkeeping, kept in the node so a backward pass needs no hash maps.
  /// Valid only while `task` equals the running pass's id. (One backward pass at a time may walk
  /// a given graph; re-entrant backward over the same nodes is not supported.)
  struct EngineScratch {
    uint64_t task = 0;
    int64_t dependencies = 0;
    TensorList buffer;
    bool needed = false;
    bool queued = false;
  } scratch;

 protected:
  EdgeList next_edges_;
  InputMetaList input_meta_;
  uint32_t num_outputs_ = 1;
  uint64_t sequence_nr_;
  std::vector<std::tuple<unsigned, uint32_t, TensorHook>> pre_hooks_;
  unsigned next_hook_id_ = 0;
};

/// Rebuilds a view's grad_fn when its storage was modified in place since it was set (through the
/// view, its base or another view): PyTorch's VariableHooks::grad_fn. Defined in ops_view.cpp.
void refresh_view_grad_fn(const std::shared_ptr<TensorImpl>& view);
/// `tensor`'s grad_fn was replaced (an in-place op, a rebuilt view): its retain_grad() registration
/// moves from old_fn to the new grad_fn, so .grad is the gradient of the tensor's current value, as
/// PyTorch's retains_grad hooks move (no-op unless the tensor retains grad). Defined in engine.cpp.
void move_retained_grad(const std::shared_ptr<TensorImpl>& tensor, Node* old_fn);
/// The view-specific checks of an in-place op that autograd records (PyTorch's check_inplace +
/// handle_view_on_rebase): views made under no-grad, by split/chunk/unbind or by a custom Function,
/// and views of a leaf that requires grad.
void check_view_inplace(const char* op, const Tensor& view);
/// An in-place op on `view` recorded `result`: the base's history becomes CopySlices(old base
/// history, result's node applied to the view's region), and the view's grad_fn is rebuilt from it.
void rebase_view_history(const Tensor& view, const Tensor& result);

/// Marks the node that recorded `output` as piecewise linear (Node::piecewise_linear).
inline void mark_piecewise_linear(const Tensor& output) {
  if (output.grad_fn()) output.grad_fn()->piecewise_linear = true;
}

/// What a backward function of a built-in op can see.
class BackwardContext {
 public:
  BackwardContext(const Node& node, const TensorList& saved) : node_(node), saved_(saved.data()), count_(saved.size()) {}
  BackwardContext(const Node& node, const Tensor* saved, size_t count) : node_(node), saved_(saved), count_(count) {}
  /// The i-th tensor passed to record(..., saved, ...).
  const Tensor& saved(size_t i) const {
    if (i >= count_) throw std::out_of_range("BackwardContext::saved: index out of range");
    return saved_[i];
  }
  bool needs_grad(size_t input) const { return node_.needs_input_grad(input); }
  Shape input_shape(size_t input) const { return node_.input_meta().at(input).shape(); }
  Dtype input_dtype(size_t input) const { return node_.input_meta().at(input).dtype; }

 private:
  const Node& node_;
  const Tensor* saved_;
  size_t count_;
};

/// Backward of a single-output op: (context, gradient of the output) -> gradient per input.
using BackwardFn = std::function<TensorList(const BackwardContext&, const Tensor&)>;
/// Backward of a multi-output op: (context, gradients per output; undefined where none) -> per input.
using MultiBackwardFn = std::function<TensorList(const BackwardContext&, const TensorList&)>;

/// The node type of every built-in op: a name, saved tensors, and a backward function.
class FunctionNode final : public Node {
 public:
  FunctionNode(const char* name, MultiBackwardFn backward) : name_(name), backward_(std::move(backward)) {}
  FunctionNode(const char* name, BackwardFn backward) : name_(name), single_backward_(std::move(backward)) {}
  TensorList apply(TensorList&& grad_outputs) override;
  std::string name() const override;
  void release_saved() override;
  std::vector<SavedTensor, PoolAllocator<SavedTensor>> saved;

 private:
  const char* name_;
  MultiBackwardFn backward_;
  BackwardFn single_backward_;  // single-output ops: no adapter closure around it
};

/// True when grad mode is on and any input requires a gradient: the op must record.
bool should_record(std::initializer_list<const Tensor*> inputs);
bool should_record(const TensorList& inputs);

/// Records a single-output op: `output` gets a node that saves `saved` and runs `backward`.
void record(const char* op_name, const TensorList& inputs, Tensor& output, const TensorList& saved,
            BackwardFn backward);
/// The same for braced lists (`record("MulBackward", {a, b}, out, {a, b}, ...)`): no vectors built.
void record(const char* op_name, std::initializer_list<Tensor> inputs, Tensor& output,
            std::initializer_list<Tensor> saved, BackwardFn backward);
/// Records a multi-output op (outputs may include non-differentiable ones, left out of `outputs`
/// by passing undefined tensors).
void record_multi(const char* op_name, const TensorList& inputs, TensorList& outputs, const TensorList& saved,
                  MultiBackwardFn backward);

/// Anomaly-mode check of a forward result (no-op unless DetectAnomalyGuard is active).
void check_forward_anomaly(const char* op_name, const Tensor& output);

/// Runs a composite op (mm and matmul over gemm, mean/var/norm over sum and mul, conv over im2col and
/// gemm) with the inner ops' anomaly checks off and checks its result once under its own name, so an
/// overflow is reported as the op the caller used. Outside anomaly mode: one flag read, no scan.
template <class F>
Tensor anomaly_checked_as(const char* op_name, F&& compute) {
  if (!AnomalyMode::is_enabled()) return compute();
  struct InnerChecksOff {
    InnerChecksOff() { AnomalyMode::set_enabled(false); }
    ~InnerChecksOff() { AnomalyMode::set_enabled(true); }  // also when compute() throws
  };
  Tensor out;
  {
    InnerChecksOff inner;
    out = compute();
  }
  check_forward_anomaly(op_name, out);
  return out;
}

}  // namespace xg::autograd
