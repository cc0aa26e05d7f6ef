#include "xgrad/distributed/data_parallel.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/autograd/node.hpp"
#include "xgrad/distributed/mpi_detail.hpp"

namespace xg::distributed {

namespace {

using detail::check_mpi;

// ---- gradients <-> flat buffers --------------------------------------------------------------------
// A bucket's buffer holds the gradients of its parameters one after another, then one flag per
// parameter: 1 where this rank has a gradient for it, 0 where it has none. The flags are summed with
// the data, so after the all-reduce a parameter without a gradient on every rank can stay without one
// (as in single-process training), while one that some rank used gets the average, with zeros for
// the ranks that did not use it.

template <class T>
const T* typed_data(const Tensor& tensor) {
  return tensor.template contiguous_data<T>();
}

/// slice = param.grad (or zeros), flag = whether it exists.
template <class T>
void copy_gradient_into(const Tensor& param, T* slice, T* flag) {
  Tensor grad = param.grad();
  const int64_t count = param.numel();
  if (grad.defined()) {
    const Tensor dense = grad.contiguous();
    std::memcpy(slice, typed_data<T>(dense), static_cast<size_t>(count) * sizeof(T));
    *flag = 1;
  } else {
    std::fill(slice, slice + count, T(0));
    *flag = 0;
  }
}

/// param.grad = slice / divisor where some rank had a gradient (flag > 0); otherwise left undefined.
template <class T>
void write_gradient_from(const Tensor& param, const T* slice, T flag, T divisor) {
  if (!(flag > T(0.5))) return;
  Tensor grad = param.grad();
  if (!grad.defined() || grad.requires_grad()) {
    // No gradient here yet (unused on this rank), or one recorded with create_graph: a fresh tensor.
    grad = empty(param.shape(), TensorOptions(param.dtype()));
    param.set_grad(grad);
  }
  T* out = grad.template contiguous_data<T>();
  const int64_t count = param.numel();
  for (int64_t i = 0; i < count; ++i) out[i] = slice[i] / divisor;
  ++grad.impl()->storage->version;
}

/// FNV-1a: one number that differs when the model's description differs.
uint64_t fingerprint(const std::string& text) {
  uint64_t hash = 1469598103934665603ull;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return hash;
}

/// One line per tensor: "name dtype [shape] requires_grad".
std::vector<std::string> describe(const nn::OrderedDict<Tensor>& parameters, const nn::OrderedDict<Tensor>& buffers) {
  std::vector<std::string> lines;
  for (const auto& [name, tensor] : parameters)
    lines.push_back(fmt::format("parameter {} {} {} requires_grad={}", name, tensor.dtype(), shape_string(tensor.shape()),
                                tensor.requires_grad()));
  for (const auto& [name, tensor] : buffers)
    lines.push_back(fmt::format("buffer {} {} {}", name, tensor.dtype(), shape_string(tensor.shape())));
  return lines;
}

/// Collective: throws the same kind of xg::Error on every rank unless all ranks describe their model
/// exactly as `root` does (the difference is named from this rank's point of view).
void check_same_model_everywhere(const nn::Module& module, int root, const char* op) {
  MPI_Comm comm = detail::communicator(op);
  const std::vector<std::string> lines = describe(module.named_parameters(), module.named_buffers());
  std::string text;
  for (const std::string& line : lines) text += line + "\n";
  uint64_t mine = fingerprint(text), roots = mine;
  check_mpi(MPI_Bcast(&roots, 1, MPI_UINT64_T, root, comm), op);
  int differs = mine != roots ? 1 : 0, any_differs = 0;
  check_mpi(MPI_Allreduce(&differs, &any_differs, 1, MPI_INT, MPI_MAX, comm), op);
  if (!any_differs) return;

  // Slow path, only on error: fetch root's description to name the first difference.
  uint64_t length = text.size();
  check_mpi(MPI_Bcast(&length, 1, MPI_UINT64_T, root, comm), op);
  XG_CHECK(length < (uint64_t{1} << 31), "{}: the model description on rank {} is too long to compare", op, root);
  std::string root_text = text;
  root_text.resize(static_cast<size_t>(length));
  check_mpi(MPI_Bcast(root_text.data(), static_cast<int>(length), MPI_CHAR, root, comm), op);
  if (!differs)
    XG_ERROR("{}: the model's parameters or buffers differ between ranks (this rank matches rank {}; another does not)",
             op, root);
  std::vector<std::string> root_lines;
  for (size_t start = 0; start < root_text.size();) {
    size_t end = root_text.find('\n', start);
    root_lines.push_back(root_text.substr(start, end - start));
    start = end + 1;
  }
  for (size_t i = 0; i < std::max(lines.size(), root_lines.size()); ++i) {
    std::string here = i < lines.size() ? lines[i] : "nothing";
    std::string there = i < root_lines.size() ? root_lines[i] : "nothing";
    if (here != there)
      XG_ERROR("{}: the model's parameters or buffers differ between ranks: entry {} is '{}' on rank {} but '{}' on "
               "rank {}",
               op, i, here, get_rank(), there, root);
  }
  XG_ERROR("{}: the model's parameters or buffers differ between ranks", op);
}

/// Parameters that require grad, each once (a tensor registered under two names counts once).
std::vector<std::pair<std::string, Tensor>> trainable_parameters(const nn::Module& module) {
  std::vector<std::pair<std::string, Tensor>> out;
  std::unordered_set<const TensorImpl*> seen;
  for (const auto& [name, tensor] : module.named_parameters())
    if (tensor.requires_grad() && seen.insert(tensor.impl().get()).second) out.emplace_back(name, tensor);
  return out;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

// ---- free functions ----------------------------------------------------------------------------------

namespace {
void broadcast_module_state(nn::Module& module, int root, const char* op) {
  const int world = get_world_size();
  XG_CHECK(root >= 0 && root < world, "{}: root must be a rank in [0, {}), got {}", op, world, root);
  check_same_model_everywhere(module, root, op);
  NoGradGuard no_grad;
  for (const auto& [name, tensor] : module.named_parameters()) broadcast(tensor, root);
  for (const auto& [name, tensor] : module.named_buffers()) broadcast(tensor, root);
}
}  // namespace

void broadcast_parameters(nn::Module& module, int root) { broadcast_module_state(module, root, "broadcast_parameters"); }

void all_reduce_gradients(nn::Module& module, ReduceOp op) {
  XG_CHECK(op == ReduceOp::kSum || op == ReduceOp::kMean, "all_reduce_gradients: expected ReduceOp::kSum or kMean");
  MPI_Comm comm = detail::communicator("all_reduce_gradients");
  const auto params = trainable_parameters(module);
  // Collective on every rank whatever its gradients: one buffer per dtype, in a fixed dtype order.
  auto reduce = [&](auto zero) {
    using T = decltype(zero);
    std::vector<const Tensor*> group;
    int64_t count = 0;
    for (const auto& [name, param] : params)
      if (param.dtype() == dtype_of<T>()) {
        group.push_back(&param);
        count += param.numel();
      }
    if (group.empty()) return;
    std::vector<T> buffer(static_cast<size_t>(count) + group.size());
    T* flags = buffer.data() + count;
    int64_t offset = 0;
    for (size_t i = 0; i < group.size(); ++i) {
      copy_gradient_into<T>(*group[i], buffer.data() + offset, flags + i);
      offset += group[i]->numel();
    }
    for (size_t start = 0; start < buffer.size(); start += static_cast<size_t>(detail::kMaxMpiCount)) {
      const int chunk = static_cast<int>(std::min<size_t>(static_cast<size_t>(detail::kMaxMpiCount), buffer.size() - start));
      check_mpi(MPI_Allreduce(MPI_IN_PLACE, buffer.data() + start, chunk, detail::mpi_datatype(dtype_of<T>()), MPI_SUM, comm),
                "all_reduce_gradients");
    }
    const T divisor = op == ReduceOp::kMean ? static_cast<T>(get_world_size()) : T(1);
    offset = 0;
    for (size_t i = 0; i < group.size(); ++i) {
      write_gradient_from<T>(*group[i], buffer.data() + offset, flags[i], divisor);
      offset += group[i]->numel();
    }
  };
  reduce(float{});
  reduce(double{});
}

// ---- the reducer -------------------------------------------------------------------------------------

class DistributedDataParallel::Reducer {
 public:
  Reducer(std::shared_ptr<nn::Module> module, DistributedDataParallelOptions options)
      : module_(std::move(module)), options_(options) {
    XG_CHECK(module_ != nullptr, "DistributedDataParallel: the module is null");
    XG_CHECK(std::isfinite(options_.bucket_cap_mb_) && options_.bucket_cap_mb_ > 0,
             "DistributedDataParallel: bucket_cap_mb must be a positive number, got {}", options_.bucket_cap_mb_);
    comm_ = detail::communicator("DistributedDataParallel");
    world_size_ = get_world_size();
    broadcast_module_state(*module_, 0, "DistributedDataParallel");
    build_buckets();
    for (size_t i = 0; i < params_.size(); ++i) {
      params_[i].hook = params_[i].tensor.register_hook([this, i](const Tensor& grad) {
        on_gradient(i, grad);
        return Tensor();  // the engine still accumulates into .grad; finalize_backward overwrites it
      });
    }
  }

  ~Reducer() {
    for (Param& param : params_) param.tensor.remove_hook(param.hook);
    // An all-reduce still in flight (backward failed between launch and finalize) writes into its
    // buffer whenever MPI progresses it: that memory must outlive us. Leak it rather than hand freed
    // memory to MPI; the job is ending anyway (the error that stopped backward aborts it).
    bool in_flight = std::any_of(buckets_.begin(), buckets_.end(), [](const Bucket& b) { return b.launched && !b.done; });
    if (in_flight) new std::vector<Bucket>(std::move(buckets_));  // NOLINT: deliberate leak, see above
  }

  nn::Module& module() const { return *module_; }
  const DistributedDataParallelOptions& options() const { return options_; }
  const DistributedDataParallelStats& stats() const { return stats_; }
  int64_t num_buckets() const { return static_cast<int64_t>(buckets_.size()); }

  std::vector<std::vector<std::string>> bucket_parameter_names() const {
    std::vector<std::vector<std::string>> out;
    for (const Bucket& bucket : buckets_) {
      out.emplace_back();
      for (size_t index : bucket.params) out.back().push_back(params_[index].name);
    }
    return out;
  }

  void prepare_for_backward(const Tensor& loss) {
    XG_CHECK(!armed_ && !in_flight(),
             "DistributedDataParallel::prepare_for_backward: the previous backward was not finished with "
             "finalize_backward()");
    XG_CHECK(loss.defined() && loss.requires_grad(),
             "DistributedDataParallel::prepare_for_backward: expected the loss to backward from (a tensor that "
             "requires grad), got {}",
             loss.defined() ? "a tensor that does not require grad" : "an undefined tensor");
    if (!options_.overlap_communication_) return;  // synchronous fallback: everything in finalize_backward
    for (Param& param : params_) {
      param.pending = 0;
      param.seen = false;
    }
    count_gradient_contributions(loss);
    for (Bucket& bucket : buckets_) {
      bucket.pending_params = 0;
      for (size_t index : bucket.params)
        if (params_[index].pending > 0) ++bucket.pending_params;
      bucket.launched = bucket.done = bucket.launched_in_backward = false;
    }
    next_to_launch_ = 0;
    armed_ = true;
    launch_ready_buckets(false);  // buckets none of whose parameters the loss depends on
  }

  void finalize_backward() {
    const auto start = std::chrono::steady_clock::now();
    if (armed_) {
      // Buckets still waiting for a gradient contribution that never came (a backward function that
      // returned no gradient for an input, or a different loss than the one prepared): their
      // gradients are complete now that backward has returned.
      for (size_t b = next_to_launch_; b < buckets_.size(); ++b) {
        for (size_t index : buckets_[b].params) params_[index].seen = false;
        launch(buckets_[b], false);
      }
    } else {
      for (Bucket& bucket : buckets_) {
        bucket.launched = bucket.done = bucket.launched_in_backward = false;
        for (size_t index : bucket.params) params_[index].seen = false;
        launch(bucket, false);
      }
    }
    armed_ = false;
    next_to_launch_ = buckets_.size();
    int64_t launched_in_backward = 0;
    for (Bucket& bucket : buckets_) {
      if (!bucket.done) {
        check_mpi(MPI_Wait(&bucket.request, MPI_STATUS_IGNORE), "DistributedDataParallel::finalize_backward");
        bucket.done = true;
      }
      if (bucket.launched_in_backward) ++launched_in_backward;
    }
    const double waited = seconds_since(start);
    for (Bucket& bucket : buckets_) write_back(bucket);
    if (options_.broadcast_buffers_ && world_size_ > 1) {
      NoGradGuard no_grad;
      for (const auto& [name, buffer] : module_->named_buffers()) broadcast(buffer, 0);
    }
    stats_.buckets = num_buckets();
    stats_.buckets_launched_in_backward = launched_in_backward;
    stats_.finalize_wait_seconds = waited;
  }

 private:
  struct Param {
    Tensor tensor;
    std::string name;
    size_t bucket = 0;
    int64_t offset = 0;   // first element in the bucket's buffer
    size_t slot = 0;      // position among the bucket's parameters (its flag)
    unsigned hook = 0;
    int64_t pending = 0;  // gradient contributions still to come in this backward
    bool seen = false;    // a contribution arrived in this backward (its slice holds the running sum)
  };

  struct Bucket {
    Dtype dtype = kFloat32;
    std::vector<size_t> params;
    int64_t count = 0;  // gradient elements (the flags follow)
    std::vector<float> f32;
    std::vector<double> f64;
    int64_t pending_params = 0;
    bool launched = false, done = false, launched_in_backward = false;
    MPI_Request request = MPI_REQUEST_NULL;
    void* data() { return dtype == kFloat32 ? static_cast<void*>(f32.data()) : static_cast<void*>(f64.data()); }
    int64_t size() const { return count + static_cast<int64_t>(params.size()); }
  };

  /// Calls f with a typed pointer to the bucket's buffer.
  template <class F>
  static void with_buffer(Bucket& bucket, F&& f) {
    if (bucket.dtype == kFloat32) f(bucket.f32.data());
    else f(bucket.f64.data());
  }

  void build_buckets() {
    const double cap_bytes = options_.bucket_cap_mb_ * 1024.0 * 1024.0;
    auto named = trainable_parameters(*module_);
    // Reverse registration order: backward produces the last layers' gradients first.
    std::reverse(named.begin(), named.end());
    std::unordered_map<int, size_t> open_bucket;  // dtype -> bucket being filled
    for (auto& [name, tensor] : named) {
      XG_CHECK(is_floating(tensor.dtype()), "DistributedDataParallel: parameter '{}' is {}, expected float32 or float64",
               name, tensor.dtype());
      const int key = static_cast<int>(tensor.dtype());
      auto open = open_bucket.find(key);
      if (open == open_bucket.end()) {
        buckets_.emplace_back();
        buckets_.back().dtype = tensor.dtype();
        open = open_bucket.emplace(key, buckets_.size() - 1).first;
      }
      Bucket& bucket = buckets_[open->second];
      Param param;
      param.tensor = tensor;
      param.name = name;
      param.bucket = open->second;
      param.offset = bucket.count;
      param.slot = bucket.params.size();
      bucket.params.push_back(params_.size());
      bucket.count += tensor.numel();
      index_of_[tensor.impl().get()] = params_.size();
      params_.push_back(std::move(param));
      XG_CHECK(bucket.size() <= detail::kMaxMpiCount,
               "DistributedDataParallel: parameter '{}' has {} elements; at most {} fit in one all-reduce", name,
               tensor.numel(), detail::kMaxMpiCount);
      if (static_cast<double>(bucket.count) * static_cast<double>(detail::element_size(bucket.dtype)) >= cap_bytes)
        open_bucket.erase(open);
    }
    for (Bucket& bucket : buckets_) {
      if (bucket.dtype == kFloat32) bucket.f32.assign(static_cast<size_t>(bucket.size()), 0.0f);
      else bucket.f64.assign(static_cast<size_t>(bucket.size()), 0.0);
    }
  }

  /// pending[p] = 1 for each parameter that loss's graph reaches: the engine runs a leaf's hooks once
  /// per backward, on its summed gradient, as soon as the last partial has arrived (PyTorch's
  /// AccumulateGrad), so one hook call completes the parameter.
  void count_gradient_contributions(const Tensor& loss) {
    auto count_leaf = [&](const TensorImpl* leaf) {
      auto found = index_of_.find(leaf);
      if (found != index_of_.end()) params_[found->second].pending = 1;
    };
    if (!loss.grad_fn()) {
      count_leaf(loss.impl().get());
      return;
    }
    std::vector<const autograd::Node*> stack{loss.grad_fn().get()};
    std::unordered_set<const autograd::Node*> visited{loss.grad_fn().get()};
    while (!stack.empty()) {
      const autograd::Node* node = stack.back();
      stack.pop_back();
      for (const autograd::Edge& edge : node->next_edges()) {
        if (edge.leaf) count_leaf(edge.leaf.get());
        else if (edge.node && visited.insert(edge.node.get()).second) stack.push_back(edge.node.get());
      }
    }
  }

  /// The gradient hook: runs before the engine adds `grad` into the parameter's .grad.
  void on_gradient(size_t index, const Tensor& grad) {
    if (!armed_) return;  // a plain loss.backward(): gradients accumulate locally
    Param& param = params_[index];
    Bucket& bucket = buckets_[param.bucket];
    XG_CHECK(param.pending > 0 && !bucket.launched,
             "DistributedDataParallel: parameter '{}' received a gradient after its bucket was all-reduced: it "
             "is used outside the graph of the loss given to prepare_for_backward(), or backward ran twice "
             "after one prepare_for_backward()",
             param.name);
    XG_CHECK(grad.dtype() == bucket.dtype && grad.numel() == param.tensor.numel(),
             "DistributedDataParallel: parameter '{}' received a {} gradient of shape {}; expected {} {} (convert "
             "the model with to(dtype) before wrapping it)",
             param.name, grad.dtype(), shape_string(grad.shape()), bucket.dtype, shape_string(param.tensor.shape()));
    with_buffer(bucket, [&](auto* buffer) {
      using T = std::remove_pointer_t<decltype(buffer)>;
      T* slice = buffer + param.offset;
      const Tensor dense = grad.contiguous();  // a hook's gradient may be a view (an expanded one from sum)
      const T* incoming = dense.template contiguous_data<T>();
      const int64_t count = param.tensor.numel();
      // The parameter's whole gradient of this backward (the hook runs once, on the sum), added to
      // the gradient accumulated before it (gradient accumulation), as the engine is about to do.
      copy_gradient_into<T>(param.tensor, slice, buffer + bucket.count + param.slot);
      buffer[bucket.count + param.slot] = 1;
      for (int64_t i = 0; i < count; ++i) slice[i] += incoming[i];
    });
    param.seen = true;
    if (--param.pending == 0 && --bucket.pending_params == 0) launch_ready_buckets(true);
    poll();
  }

  /// Starts the ready buckets in index order: MPI needs every rank to start collectives in the same
  /// order, and the order in which buckets become ready could differ between ranks.
  void launch_ready_buckets(bool in_backward) {
    while (next_to_launch_ < buckets_.size() && buckets_[next_to_launch_].pending_params == 0)
      launch(buckets_[next_to_launch_++], in_backward);
  }

  void launch(Bucket& bucket, bool in_backward) {
    // Parameters whose slice no hook filled (not reached by this backward): their .grad is final.
    with_buffer(bucket, [&](auto* buffer) {
      for (size_t index : bucket.params) {
        const Param& param = params_[index];
        if (!param.seen) copy_gradient_into(param.tensor, buffer + param.offset, buffer + bucket.count + param.slot);
      }
    });
    check_mpi(MPI_Iallreduce(MPI_IN_PLACE, bucket.data(), static_cast<int>(bucket.size()),
                             detail::mpi_datatype(bucket.dtype), MPI_SUM, comm_, &bucket.request),
              "DistributedDataParallel: all-reduce of a gradient bucket");
    bucket.launched = true;
    bucket.done = false;
    bucket.launched_in_backward = in_backward;
  }

  /// MPI progresses non-blocking collectives only inside MPI calls: test the ones in flight from
  /// each hook so they advance while backward computes.
  void poll() {
    for (Bucket& bucket : buckets_) {
      if (!bucket.launched || bucket.done) continue;
      int finished = 0;
      check_mpi(MPI_Test(&bucket.request, &finished, MPI_STATUS_IGNORE), "DistributedDataParallel");
      bucket.done = finished != 0;
    }
  }

  bool in_flight() const {
    return std::any_of(buckets_.begin(), buckets_.end(), [](const Bucket& b) { return b.launched && !b.done; });
  }

  void write_back(Bucket& bucket) {
    with_buffer(bucket, [&](auto* buffer) {
      using T = std::remove_pointer_t<decltype(buffer)>;
      for (size_t index : bucket.params) {
        const Param& param = params_[index];
        write_gradient_from<T>(param.tensor, buffer + param.offset, buffer[bucket.count + param.slot],
                               static_cast<T>(world_size_));
      }
    });
  }

  std::shared_ptr<nn::Module> module_;
  DistributedDataParallelOptions options_;
  MPI_Comm comm_ = MPI_COMM_NULL;
  int world_size_ = 1;
  std::vector<Param> params_;
  std::vector<Bucket> buckets_;
  std::unordered_map<const TensorImpl*, size_t> index_of_;
  size_t next_to_launch_ = 0;
  bool armed_ = false;
  DistributedDataParallelStats stats_;
};

// ---- DistributedDataParallel -------------------------------------------------------------------------

DistributedDataParallel::DistributedDataParallel(std::shared_ptr<nn::Module> module, DistributedDataParallelOptions options)
    : reducer_(std::make_unique<Reducer>(std::move(module), options)) {}

DistributedDataParallel::~DistributedDataParallel() = default;
DistributedDataParallel::DistributedDataParallel(DistributedDataParallel&&) noexcept = default;
DistributedDataParallel& DistributedDataParallel::operator=(DistributedDataParallel&&) noexcept = default;

nn::Module& DistributedDataParallel::module() const { return reducer_->module(); }
const DistributedDataParallelOptions& DistributedDataParallel::options() const { return reducer_->options(); }

void DistributedDataParallel::backward(const Tensor& loss) {
  reducer_->prepare_for_backward(loss);
  loss.backward();
  reducer_->finalize_backward();
}

void DistributedDataParallel::prepare_for_backward(const Tensor& loss) { reducer_->prepare_for_backward(loss); }
void DistributedDataParallel::finalize_backward() { reducer_->finalize_backward(); }
int64_t DistributedDataParallel::num_buckets() const { return reducer_->num_buckets(); }
std::vector<std::vector<std::string>> DistributedDataParallel::bucket_parameter_names() const {
  return reducer_->bucket_parameter_names();
}
const DistributedDataParallelStats& DistributedDataParallel::last_stats() const { return reducer_->stats(); }

}  // namespace xg::distributed
