#include "xgrad/autograd/engine.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/autograd/kernels.hpp"
#include "xgrad/autograd/ops.hpp"

namespace xg {
namespace autograd {

// ---- grad mode -------------------------------------------------------------------------------
namespace {
thread_local bool grad_enabled = true;
thread_local bool anomaly_enabled = false;
thread_local bool inference_mode_enabled = false;
// Set while a node's backward runs: its outputs are checked (and the node named) by the engine.
thread_local bool inside_backward = false;
std::atomic<uint64_t> next_sequence_nr{0};
}  // namespace

bool GradMode::is_enabled() { return grad_enabled; }
void GradMode::set_enabled(bool enabled) { grad_enabled = enabled; }
bool InferenceModeState::is_enabled() { return inference_mode_enabled; }
void InferenceModeState::set_enabled(bool enabled) { inference_mode_enabled = enabled; }
bool AnomalyMode::is_enabled() { return anomaly_enabled; }
void AnomalyMode::set_enabled(bool enabled) { anomaly_enabled = enabled; }

// ---- iterative release of deep graphs ----------------------------------------------------------
// Destroying the last handle of a 100,000-node chain would recurse once per node (node -> edge ->
// node ...). Instead, a node or tensor that is about to drop the last reference to a node hands it
// to a per-thread queue, which the outermost destructor drains in a loop.
namespace {
struct ReleaseQueue {
  std::vector<std::shared_ptr<Node>> pending;
  bool draining = false;
};
thread_local ReleaseQueue release_queue;

void defer_release(std::shared_ptr<Node>& node) {
  if (node && node.use_count() == 1) release_queue.pending.push_back(std::move(node));
}

void drain_release_queue() {
  ReleaseQueue& queue = release_queue;
  if (queue.draining) return;
  queue.draining = true;
  while (!queue.pending.empty()) {
    std::shared_ptr<Node> node = std::move(queue.pending.back());
    queue.pending.pop_back();
    node.reset();  // its destructor defers its own inputs instead of recursing
  }
  queue.draining = false;
}
}  // namespace

Node::Node() : sequence_nr_(next_sequence_nr++) {}

Node::~Node() {
  for (Edge& edge : next_edges_) {
    defer_release(edge.node);
    if (edge.leaf && edge.leaf.use_count() == 1) defer_release(edge.leaf->grad_fn);
  }
  drain_release_queue();
}

unsigned Node::add_pre_hook(uint32_t output_nr, TensorHook hook) {
  unsigned id = next_hook_id_++;
  pre_hooks_.emplace_back(id, output_nr, std::move(hook));
  return id;
}

void Node::remove_pre_hook(unsigned handle) {
  pre_hooks_.erase(std::remove_if(pre_hooks_.begin(), pre_hooks_.end(),
                                  [&](const auto& h) { return std::get<0>(h) == handle; }),
                   pre_hooks_.end());
}

std::string Node::forward_description() const {
  std::vector<std::string> shapes;
  for (const InputMeta& meta : input_meta_) shapes.push_back(fmt::format("{} {}", shape_string(meta.shape()), meta.dtype));
  return fmt::format("{} recorded on input(s) {}", name(), fmt::join(shapes, ", "));
}

void Node::set_inputs(const Tensor* inputs, size_t count) {
  next_edges_.resize(count);
  input_meta_.resize(count);
  for (size_t i = 0; i < count; ++i) {
    const Tensor& input = inputs[i];
    if (!input.defined()) continue;
    InputMeta& meta = input_meta_[i];
    meta.sizes = input.impl()->sizes;
    meta.dtype = input.dtype();
    if (!input.requires_grad()) continue;
    if (input.grad_fn()) {
      next_edges_[i].node = input.grad_fn();
      next_edges_[i].output_nr = input.impl()->output_nr;
    } else {
      next_edges_[i].leaf = input.impl();
    }
  }
}

// ---- saved tensors ---------------------------------------------------------------------------
SavedTensor::SavedTensor(const Tensor& tensor, bool is_output) : is_output_(is_output) {
  if (!tensor.defined()) return;
  defined_ = true;
  saved_version_ = tensor.impl()->storage->version;
  requires_grad_ = tensor.requires_grad();
  output_nr_ = tensor.impl()->output_nr;
  // (A view that is itself a leaf requiring grad is kept as is: gradients of a double backward must
  // reach that very tensor.)
  const bool view_with_history = tensor.is_view() && !(tensor.requires_grad() && !tensor.grad_fn());
  if (is_output || view_with_history) {
    // An output: without its grad_fn (that is this node: a reference cycle). A view: without its
    // base, but with the grad_fn it has now. Holding the view itself would hold its base, whose
    // history may come to hold this node (y.mul_(y[0]) makes y's grad_fn the node that saved y[0]):
    // a cycle that leaks the graph if backward never runs.
    if (!is_output) view_grad_fn_ = tensor.grad_fn();
    const TensorImpl& impl = *tensor.impl();
    storage_ = impl.storage;
    sizes_ = impl.sizes;
    strides_ = impl.strides;
    offset_ = impl.storage_offset;
  } else {
    tensor_ = tensor;
  }
}

Tensor SavedTensor::unpack(const std::shared_ptr<Node>& node, const char* op_name) const {
  if (!defined_) return {};
  XG_CHECK(!released_,
           "{}: trying to backward through the graph a second time (or to use saved tensors after they "
           "were freed). Saved tensors are freed after backward; call backward(..., retain_graph=true) "
           "the first time if you need to backward twice",
           op_name);
  const std::shared_ptr<Storage>& storage = storage_ ? storage_ : tensor_.impl()->storage;
  if (storage->version != saved_version_) {
    const Sizes& sizes = storage_ ? sizes_ : tensor_.impl()->sizes;
    XG_ERROR("{}: one of the tensors needed for gradient computation has been modified by an in-place "
             "operation (possibly through a view of it): a tensor of shape {} is at version {}; expected version {}",
             op_name, shape_string(Shape(sizes.begin(), sizes.end())), storage->version, saved_version_);
  }
  if (!storage_) return tensor_;
  auto impl = std::allocate_shared<TensorImpl>(PoolAllocator<TensorImpl>());
  impl->storage = storage_;
  detail::set_geometry(*impl, sizes_, strides_, offset_);
  impl->requires_grad = requires_grad_;
  if (!is_output_) {  // a saved view
    impl->grad_fn = view_grad_fn_;
    impl->output_nr = output_nr_;
    return Tensor(std::move(impl));
  }
  if (requires_grad_) {
    impl->grad_fn = node;
    impl->output_nr = output_nr_;
  }
  return Tensor(std::move(impl));
}

void SavedTensor::release() {
  if (!defined_) return;
  released_ = true;
  tensor_ = Tensor();
  storage_.reset();
  view_grad_fn_.reset();
}

// ---- function nodes and recording ------------------------------------------------------------
TensorList FunctionNode::apply(TensorList&& grad_outputs) {
  // Unpacked saved tensors live on the stack for the usual few; only saved outputs need a handle
  // to this node (re-attached as their grad_fn), so shared_from_this is taken only for them.
  constexpr size_t kInlineSaved = 4;
  Tensor inline_saved[kInlineSaved];
  TensorList heap_saved;
  Tensor* unpacked = inline_saved;
  if (saved.size() > kInlineSaved) {
    heap_saved.resize(saved.size());
    unpacked = heap_saved.data();
  }
  std::shared_ptr<Node> self;
  for (size_t i = 0; i < saved.size(); ++i) {
    if (saved[i].is_output() && !self) self = shared_from_this();
    unpacked[i] = saved[i].unpack(self, name_);
  }
  BackwardContext ctx(*this, unpacked, saved.size());
  if (single_backward_) return single_backward_(ctx, grad_outputs[0]);
  return backward_(ctx, grad_outputs);
}

std::string FunctionNode::name() const { return name_; }

void FunctionNode::release_saved() {
  for (SavedTensor& s : saved) s.release();
}

bool should_record(std::initializer_list<const Tensor*> inputs) {
  if (!GradMode::is_enabled()) return false;
  for (const Tensor* t : inputs)
    if (t->requires_grad()) return true;
  return false;
}

bool should_record(const TensorList& inputs) {
  if (!GradMode::is_enabled()) return false;
  for (const Tensor& t : inputs)
    if (t.requires_grad()) return true;
  return false;
}

namespace {
/// Connects a new node to its inputs, saves what backward needs and makes it the outputs' grad_fn.
void attach(const std::shared_ptr<FunctionNode>& node, const Tensor* inputs, size_t input_count, Tensor* outputs,
            size_t count, const Tensor* saved, size_t saved_count) {
  node->set_inputs(inputs, input_count);
  node->set_num_outputs(static_cast<uint32_t>(count));
  node->saved.reserve(saved_count);
  for (size_t k = 0; k < saved_count; ++k) {
    const Tensor& s = saved[k];
    bool is_output = false;
    for (size_t i = 0; i < count; ++i) {
      if (!outputs[i].defined() || !s.is_same(outputs[i])) continue;
      // Give the output its autograd identity first, so the saved copy remembers output_nr.
      is_output = true;
      outputs[i].impl()->output_nr = static_cast<uint32_t>(i);
      outputs[i].impl()->requires_grad = true;
    }
    node->saved.emplace_back(s, is_output);
  }
  for (size_t i = 0; i < count; ++i) {
    if (!outputs[i].defined()) continue;
    TensorImpl& impl = *outputs[i].impl();
    impl.requires_grad = true;
    impl.grad_fn = node;
    impl.output_nr = static_cast<uint32_t>(i);
  }
}

template <class Backward>
std::shared_ptr<FunctionNode> new_node(const char* op_name, Backward&& backward) {
  return std::allocate_shared<FunctionNode>(PoolAllocator<FunctionNode>(), op_name, std::forward<Backward>(backward));
}
}  // namespace

void record_multi(const char* op_name, const TensorList& inputs, TensorList& outputs, const TensorList& saved,
                  MultiBackwardFn backward) {
  attach(new_node(op_name, std::move(backward)), inputs.data(), inputs.size(), outputs.data(), outputs.size(),
         saved.data(), saved.size());
}

void record(const char* op_name, const TensorList& inputs, Tensor& output, const TensorList& saved,
            BackwardFn backward) {
  attach(new_node(op_name, std::move(backward)), inputs.data(), inputs.size(), &output, 1, saved.data(), saved.size());
}

void record(const char* op_name, std::initializer_list<Tensor> inputs, Tensor& output,
            std::initializer_list<Tensor> saved, BackwardFn backward) {
  attach(new_node(op_name, std::move(backward)), inputs.begin(), inputs.size(), &output, 1, saved.begin(), saved.size());
}

namespace {
bool all_finite(const Tensor& t) {
  const Tensor dense = t.detach().contiguous();  // only the tensor's own elements, not the whole storage
  return detail::dispatch(dense.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_floating_point_v<T>) {
      const T* data = dense.contiguous_data<T>();
      for (int64_t i = 0; i < dense.numel(); ++i)
        if (!std::isfinite(data[i])) return false;
    }
    return true;
  });
}
}  // namespace

void check_forward_anomaly(const char* op_name, const Tensor& output) {
  if (!AnomalyMode::is_enabled() || inside_backward || !output.defined()) return;
  XG_CHECK(all_finite(output), "anomaly detected: {} produced NaN or Inf in its forward output of shape {}",
           op_name, shape_string(output.shape()));
}

// ---- the engine ------------------------------------------------------------------------------
namespace {

/// True when the tensor's sizes equal `sizes` (no vector built).
bool has_sizes(const Tensor& t, const Sizes& sizes) { return t.impl()->sizes == sizes; }

/// Adds a gradient into a slot: out of place, because the same gradient tensor may have been
/// handed to several edges (add's backward returns its input gradient twice).
void accumulate_into(Tensor& slot, const Tensor& grad) {
  if (!slot.defined()) slot = grad;
  else slot = add(slot, grad);
}

/// Runs one gradient hook. A replacement must keep the tensor's shape and dtype (PyTorch: "hook 'hook'
/// has changed the size of value"): otherwise a leaf's .grad() would get the wrong shape, or a later
/// op would fail far from the hook, naming sum_to or matmul.
Tensor run_hook(const TensorHook& hook, const Tensor& grad) {
  Tensor replaced = hook(grad);
  if (!replaced.defined()) return grad;
  XG_CHECK(replaced.has_shape(grad.shape()) && replaced.dtype() == grad.dtype(),
           "hook: a gradient hook on a tensor of shape {} ({}) returned a gradient of shape {} ({}); a hook must "
           "return a gradient of the tensor's shape and dtype, or an undefined Tensor to keep the gradient",
           shape_string(grad.shape()), grad.dtype(), shape_string(replaced.shape()), replaced.dtype());
  return replaced;
}

Tensor apply_hooks(const std::vector<std::pair<unsigned, TensorHook>>& hooks, Tensor grad) {
  for (const auto& [id, hook] : hooks) grad = run_hook(hook, grad);
  return grad;
}

/// The gradient a piecewise-linear op's backward returned under create_graph (see
/// Node::piecewise_linear), linked to that op's input with a zero derivative; its own history, if it
/// has one (a differentiable grad_output), is kept.
class ZeroDerivativeLink final : public Node {
 public:
  ZeroDerivativeLink(std::string name, const Tensor& grad, const Edge& input, const InputMeta& meta)
      : name_(std::move(name)) {
    set_inputs(&grad, 1);
    next_edges_.push_back(input);
    input_meta_.push_back(meta);
  }
  TensorList apply(TensorList&& grad_outputs) override {
    const InputMeta& input = input_meta_[1];
    return {std::move(grad_outputs[0]), zeros(input.shape(), input.dtype)};
  }
  std::string name() const override { return name_; }

 private:
  std::string name_;
};

Tensor link_zero_derivative(const Node& node, const Tensor& grad, const Edge& input, const InputMeta& meta) {
  auto impl = detail::alias(grad, true);  // the same values, a new place in the graph
  impl->grad_fn = std::make_shared<ZeroDerivativeLink>(node.name() + "Backward", grad, input, meta);
  return Tensor(std::move(impl));
}

std::atomic<uint64_t> next_task_id{1};

struct RootEdge {
  Edge edge;
  Tensor grad;
};

/// One backward pass. With `capture` non-empty it only collects gradients of those tensors (grad());
/// otherwise it accumulates into leaves (backward()).
class GraphTask {
 public:
  GraphTask(bool keep_graph, bool create_graph) : keep_graph_(keep_graph), create_graph_(create_graph) {}
  GraphTask(const GraphTask&) = delete;
  GraphTask& operator=(const GraphTask&) = delete;
  ~GraphTask() {
    // Gradients left in buffers of nodes that never ran (an error, or grad() stopping early).
    for (Node* node : visited_) {
      node->scratch.buffer.clear();
      node->scratch.task = 0;
    }
  }

  // Tensors whose gradients grad() returns: leaves are matched by impl, non-leaves by (node, output).
  void add_capture(const Tensor& input) {
    captures_.push_back(Tensor());
    if (input.grad_fn()) capture_nodes_[input.grad_fn().get()].emplace_back(input.impl()->output_nr, captures_.size() - 1);
    else capture_leaves_[input.impl().get()].push_back(captures_.size() - 1);
  }
  TensorList& captures() { return captures_; }

  void run(std::vector<RootEdge>& roots) {
    const bool capturing = !capture_nodes_.empty() || !capture_leaves_.empty();
    // 1. Discover the graph (iterative DFS) and count, per node, how many edges lead into it.
    std::vector<Node*> stack;
    std::vector<Node*> order;  // discovery order, used to find which nodes lead to captured tensors
    for (RootEdge& root : roots)
      if (root.edge.node && visit(root.edge.node.get())) stack.push_back(root.edge.node.get());
    while (!stack.empty()) {
      Node* node = stack.back();
      stack.pop_back();
      order.push_back(node);
      for (const Edge& edge : node->next_edges()) {
        if (!edge.node) continue;
        if (visit(edge.node.get())) stack.push_back(edge.node.get());
      }
    }
    if (capturing) mark_needed(order);
    for (Node* node : order) {
      if (!is_needed(node)) continue;
      for (const Edge& edge : node->next_edges())
        if (edge.node && is_needed(edge.node.get())) ++edge.node->scratch.dependencies;
    }
    // Leaves with hooks: count the partial gradients each will receive, so that its hooks run (and
    // it accumulates) as soon as the last one arrives, as PyTorch's AccumulateGrad node does. That
    // is mid-backward: DistributedDataParallel's all-reduce starts from these hooks.
    if (!capturing) {
      for (Node* node : order)
        for (const Edge& edge : node->next_edges())
          if (edge.leaf && !edge.leaf->hooks.empty()) ++hooked_leaf(edge.leaf).pending;
      for (RootEdge& root : roots)
        if (root.edge.leaf && !root.edge.leaf->hooks.empty()) ++hooked_leaf(root.edge.leaf).pending;
    }

    // 2. Seed the roots.
    for (RootEdge& root : roots) deliver(root.edge, root.grad, nullptr);

    // 3. Run ready nodes, latest-recorded first (as PyTorch), until none is left.
    while (!ready_.empty()) {
      Node* node = ready_.top().second;
      ready_.pop();
      execute(node);
    }

    // 4. Every hooked leaf completed in step 3 unless a partial was never delivered; finish those.
    for (HookedLeaf& hooked : hooked_leaves_)
      if (hooked.grad.defined()) accumulate_leaf(*hooked.leaf, std::move(hooked.grad));
  }

 private:
  using Ready = std::pair<uint64_t, Node*>;

  void mark_needed(const std::vector<Node*>& order) {
    // Reverse discovery order visits every node after all nodes it leads to? Not in general for a
    // DFS discovery order, so iterate to a fixed point; graphs under grad() are small.
    bool changed = true;
    while (changed) {
      changed = false;
      for (auto it = order.rbegin(); it != order.rend(); ++it) {
        Node* node = *it;
        if (node->scratch.needed) continue;
        bool needed = capture_nodes_.count(node) > 0;
        for (const Edge& edge : node->next_edges()) {
          if (edge.leaf && capture_leaves_.count(edge.leaf.get())) needed = true;
          if (edge.node && edge.node->scratch.needed) needed = true;
        }
        if (needed) {
          node->scratch.needed = true;
          changed = true;
        }
      }
    }
  }

  bool is_needed(Node* node) const { return !capturing() || node->scratch.needed; }

  /// Marks a node as part of this pass; false when it already was.
  bool visit(Node* node) {
    Node::EngineScratch& scratch = node->scratch;
    if (scratch.task == task_id_) return false;
    scratch.task = task_id_;
    scratch.dependencies = 0;
    scratch.buffer.clear();
    scratch.needed = false;
    scratch.queued = false;
    visited_.push_back(node);
    return true;
  }

  void deliver(const Edge& edge, Tensor grad, Node* from) {
    if (!grad.defined() || !edge.valid()) return;
    if (edge.leaf) {
      auto captured = capture_leaves_.find(edge.leaf.get());
      if (captured != capture_leaves_.end()) {
        for (size_t slot : captured->second) accumulate_into(captures_[slot], grad);
        return;
      }
      if (!capture_nodes_.empty() || !capture_leaves_.empty()) return;  // grad(): never touch .grad()
      if (!edge.leaf->hooks.empty()) {
        // As PyTorch's AccumulateGrad: a leaf's hooks see the summed gradient of the pass, once, so
        // the partials are summed first (a leaf without hooks accumulates straight away).
        arrive_at_hooked_leaf(edge.leaf, &grad);
        return;
      }
      accumulate_leaf(*edge.leaf, std::move(grad));
      return;
    }
    Node* node = edge.node.get();
    if (!is_needed(node)) return;
    auto& buffer = node->scratch.buffer;
    if (buffer.empty()) buffer.resize(node->num_outputs());
    accumulate_into(buffer[edge.output_nr], grad);
    if (from == nullptr) {
      // A root: ready once every root pointing at it is delivered and nothing else leads into it.
      if (node->scratch.dependencies == 0) push_ready(node);
      return;
    }
    if (--node->scratch.dependencies == 0) push_ready(node);
  }

  struct HookedLeaf {
    std::shared_ptr<TensorImpl> leaf;
    Tensor grad;         // the sum of the partials so far
    size_t pending = 0;  // partials still to come in this pass
  };

  HookedLeaf& hooked_leaf(const std::shared_ptr<TensorImpl>& leaf) {
    auto [slot, added] = hooked_leaf_slots_.try_emplace(leaf.get(), hooked_leaves_.size());
    if (added) hooked_leaves_.push_back(HookedLeaf{leaf, Tensor(), 0});
    return hooked_leaves_[slot->second];
  }

  /// One partial gradient (null: an input the node gave no gradient) for a leaf with hooks; the last
  /// one runs the hooks on the sum and accumulates it into .grad().
  void arrive_at_hooked_leaf(const std::shared_ptr<TensorImpl>& leaf, Tensor* grad) {
    HookedLeaf& hooked = hooked_leaf(leaf);
    if (grad != nullptr) accumulate_into(hooked.grad, *grad);
    if (hooked.pending > 0 && --hooked.pending == 0 && hooked.grad.defined())
      accumulate_leaf(*hooked.leaf, std::move(hooked.grad));
  }

  void push_ready(Node* node) {
    if (node->scratch.queued) return;
    node->scratch.queued = true;
    ready_.emplace(node->sequence_nr(), node);
  }

  void accumulate_leaf(TensorImpl& leaf, Tensor grad) {
    grad = apply_hooks(leaf.hooks, std::move(grad));
    if (!leaf.grad) {
      // .grad is always a contiguous tensor of its own (PyTorch's layout contract): an expanded or
      // transposed view as .grad would be corrupted by the next in-place accumulation.
      if (create_graph_) {
        leaf.grad = (grad.is_contiguous() && !grad.is_view() ? grad : grad.clone()).impl();
      } else {
        // Steal the gradient when nobody else holds it; otherwise keep a private copy, since later
        // accumulation is in place.
        bool exclusive = grad.impl().use_count() == 1 && grad.impl()->storage.use_count() == 1 && !grad.requires_grad() &&
                         grad.is_contiguous();
        leaf.grad = exclusive ? grad.impl() : grad.detach().clone().impl();
      }
      return;
    }
    Tensor existing(leaf.grad);
    if (create_graph_ || existing.requires_grad()) {
      leaf.grad = add(existing, grad).impl();
    } else {
      NoGradGuard no_grad;
      existing.add_(grad);
    }
  }

  void execute(Node* node) {
    TensorList grads = std::move(node->scratch.buffer);
    node->scratch.buffer.clear();
    grads.resize(node->num_outputs());
    // The buffer holds the total gradient of each output: non-leaf hooks run once on it.
    for (const auto& [id, output_nr, hook] : node->pre_hooks()) {
      if (grads[output_nr].defined()) grads[output_nr] = run_hook(hook, grads[output_nr]);
    }
    for (const auto& [output_nr, weak] : node->retained) {
      if (auto impl = weak.lock(); impl && grads[output_nr].defined()) {
        Tensor g = create_graph_ ? grads[output_nr] : grads[output_nr].detach();
        impl->grad = impl->grad ? add(Tensor(impl->grad), g).impl() : g.clone().impl();
      }
    }
    auto captured = capture_nodes_.find(node);
    if (captured != capture_nodes_.end()) {
      for (const auto& [output_nr, slot] : captured->second)
        if (grads[output_nr].defined()) accumulate_into(captures_[slot], grads[output_nr]);
    }
    // A node reached only to capture its output gradient (not on a path to other captures) stops here.
    bool leads_further = !capturing() || std::any_of(node->next_edges().begin(), node->next_edges().end(), [&](const Edge& e) {
      return (e.leaf && capture_leaves_.count(e.leaf.get())) || (e.node && e.node->scratch.needed);
    });
    if (!leads_further) return;

    TensorList input_grads;
    {
      AutoGradMode mode(create_graph_);
      struct BackwardScope {
        bool previous = inside_backward;
        BackwardScope() { inside_backward = true; }
        ~BackwardScope() { inside_backward = previous; }
      } scope;
      input_grads = node->apply(std::move(grads));
    }
    if (!keep_graph_) node->release_saved();
    const auto& edges = node->next_edges();
    XG_CHECK(input_grads.size() == edges.size(),
             "backward: {} returned {} gradients but has {} inputs", node->name(), input_grads.size(), edges.size());
    for (size_t i = 0; i < edges.size(); ++i) {
      if (!edges[i].valid()) continue;
      Tensor& g = input_grads[i];
      if (!g.defined()) {
        // No gradient for this input from this node: still release the dependency.
        if (edges[i].node && is_needed(edges[i].node.get())) {
          if (--edges[i].node->scratch.dependencies == 0) push_ready(edges[i].node.get());
        } else if (edges[i].leaf && !capturing() && !edges[i].leaf->hooks.empty()) {
          arrive_at_hooked_leaf(edges[i].leaf, nullptr);
        }
        continue;
      }
      const InputMeta& meta = node->input_meta()[i];
      if (!has_sizes(g, meta.sizes)) {
        const Shape input_shape = meta.shape();
        Tensor reduced = sum_to(g, input_shape);
        XG_CHECK(reduced.shape() == input_shape, "backward: {} returned a gradient of shape {} for input {} of shape {}",
                 node->name(), shape_string(g.shape()), i, shape_string(input_shape));
        g = reduced;
      }
      XG_CHECK(g.dtype() == meta.dtype, "backward: {} returned a {} gradient for {} input {}", node->name(), g.dtype(),
               meta.dtype, i);
      if (AnomalyMode::is_enabled()) {
        XG_CHECK(all_finite(g), "anomaly detected: {} returned NaN or Inf in the gradient of input {} (shape {}); {}",
                 node->name(), i, shape_string(meta.shape()), node->forward_description());
      }
      if (edges[i].node && !is_needed(edges[i].node.get())) continue;
      if (create_graph_ && node->piecewise_linear) g = link_zero_derivative(*node, g, edges[i], meta);
      deliver(edges[i], std::move(g), node);
    }
  }

  bool capturing() const { return !capture_nodes_.empty() || !capture_leaves_.empty(); }

  bool keep_graph_;
  bool create_graph_;
  uint64_t task_id_ = next_task_id++;
  std::vector<Node*> visited_;
  std::priority_queue<Ready> ready_;
  std::unordered_map<Node*, std::vector<std::pair<uint32_t, size_t>>> capture_nodes_;
  std::unordered_map<TensorImpl*, std::vector<size_t>> capture_leaves_;
  TensorList captures_;
  std::vector<HookedLeaf> hooked_leaves_;  // in discovery order
  std::unordered_map<TensorImpl*, size_t> hooked_leaf_slots_;
};

std::vector<RootEdge> make_roots(const TensorList& outputs, const TensorList& grad_outputs, const char* caller) {
  XG_CHECK(grad_outputs.empty() || grad_outputs.size() == outputs.size(),
           "{}: got {} outputs but {} grad_outputs", caller, outputs.size(), grad_outputs.size());
  std::vector<RootEdge> roots;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& out = outputs[i];
    XG_CHECK(out.defined(), "{}: output {} is undefined", caller, i);
    XG_CHECK(out.requires_grad(),
             "{}: element {} of tensors does not require grad and does not have a grad_fn (was it computed "
             "under NoGradGuard, or from tensors that do not require grad?)",
             caller, i);
    Tensor g = grad_outputs.empty() ? Tensor() : grad_outputs[i];
    if (!g.defined()) {
      XG_CHECK(out.numel() == 1,
               "{}: grad can be implicitly created only for outputs with one element; output {} has shape {} "
               "(pass a gradient of that shape)",
               caller, i, shape_string(out.shape()));
      g = ones_like(out);
    } else {
      XG_CHECK(g.shape() == out.shape(), "{}: grad_output {} has shape {} but the output has shape {}", caller, i,
               shape_string(g.shape()), shape_string(out.shape()));
      XG_CHECK(g.dtype() == out.dtype(), "{}: grad_output {} is {} but the output is {}", caller, i, g.dtype(),
               out.dtype());
    }
    RootEdge root;
    if (out.grad_fn()) {
      root.edge.node = out.grad_fn();
      root.edge.output_nr = out.impl()->output_nr;
    } else {
      root.edge.leaf = out.impl();
    }
    root.grad = g;
    roots.push_back(std::move(root));
  }
  return roots;
}

}  // namespace

void backward(const TensorList& outputs, const TensorList& grad_outputs, std::optional<bool> retain_graph,
              bool create_graph) {
  std::vector<RootEdge> roots = make_roots(outputs, grad_outputs, "backward");
  GraphTask task(retain_graph.value_or(create_graph), create_graph);
  task.run(roots);
}

TensorList grad(const TensorList& outputs, const TensorList& inputs, const TensorList& grad_outputs,
                std::optional<bool> retain_graph, bool create_graph, bool allow_unused) {
  XG_CHECK(!inputs.empty(), "grad: expected at least one input");
  for (size_t i = 0; i < inputs.size(); ++i)
    XG_CHECK(inputs[i].defined() && inputs[i].requires_grad(), "grad: input {} does not require grad", i);
  std::vector<RootEdge> roots = make_roots(outputs, grad_outputs, "grad");
  GraphTask task(retain_graph.value_or(create_graph), create_graph);
  for (const Tensor& input : inputs) task.add_capture(input);
  task.run(roots);
  TensorList result = std::move(task.captures());
  for (size_t i = 0; i < result.size(); ++i) {
    if (!result[i].defined()) {
      XG_CHECK(allow_unused,
               "grad: input {} (shape {}) was not used in the graph of the outputs; pass allow_unused=true to "
               "get an undefined gradient for it",
               i, shape_string(inputs[i].shape()));
    } else if (!create_graph) {
      result[i] = result[i].detach();
    }
  }
  return result;
}

void move_retained_grad(const std::shared_ptr<TensorImpl>& tensor, Node* old_fn) {
  if (!tensor->retains_grad) return;
  if (old_fn != nullptr) {
    auto& list = old_fn->retained;
    list.erase(std::remove_if(list.begin(), list.end(),
                              [&](const auto& entry) {
                                const auto& weak = entry.second;
                                return !weak.owner_before(tensor) && !tensor.owner_before(weak);
                              }),
               list.end());
  }
  if (tensor->grad_fn) tensor->grad_fn->retained.emplace_back(tensor->output_nr, tensor);
}

}  // namespace autograd

// ---- Tensor's autograd methods ---------------------------------------------------------------
TensorImpl::~TensorImpl() {
  autograd::defer_release(grad_fn);
  autograd::drain_release_queue();
}

void Tensor::backward(const Tensor& gradient, std::optional<bool> retain_graph, bool create_graph) const {
  XG_CHECK(defined(), "backward: the tensor is undefined");
  autograd::backward({*this}, gradient.defined() ? TensorList{gradient} : TensorList{}, retain_graph, create_graph);
}

}  // namespace xg
