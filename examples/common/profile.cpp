#include "common/profile.hpp"

#include <algorithm>
#include <ostream>

#include <fmt/format.h>

namespace training {

using Clock = std::chrono::steady_clock;

namespace {
// The profiler whose probes are in the graph being backpropagated (examples are single-threaded).
LayerProfiler* active_profiler = nullptr;
}  // namespace

/// Identity in forward (a detached alias: no copy); its backward stamps the clock for layer `slot`.
struct BackwardProbe : xg::autograd::Function<BackwardProbe> {
  static xg::Tensor forward(xg::autograd::AutogradContext* ctx, const xg::Tensor& x, int64_t slot) {
    ctx->saved_data["slot"] = slot;
    return x.detach();
  }
  static xg::TensorList backward(xg::autograd::AutogradContext* ctx, xg::TensorList grad_outputs) {
    if (active_profiler != nullptr) {
      const auto slot = static_cast<size_t>(ctx->saved_data["slot"].toInt());
      if (slot < active_profiler->backward_stamps_.size()) active_profiler->backward_stamps_[slot] = Clock::now();
    }
    return {grad_outputs[0], xg::Tensor()};
  }
};

LayerProfiler::LayerProfiler(std::vector<std::pair<std::string, xg::nn::AnyModule>> layers) : layers_(std::move(layers)) {
  for (const auto& [name, layer] : layers_) rows_.push_back({fmt::format("{} {}", name, layer.ptr()->name()), 0.0, 0.0});
  backward_stamps_.resize(rows_.size());
}

xg::Tensor LayerProfiler::forward(const xg::Tensor& input) {
  xg::Tensor x = input;
  for (size_t i = 0; i < rows_.size(); ++i) {
    const auto start = Clock::now();
    x = layers_[i].second.forward(x);
    rows_[i].forward_seconds += std::chrono::duration<double>(Clock::now() - start).count();
    if (x.requires_grad()) x = BackwardProbe::apply(x, static_cast<int64_t>(i));
  }
  ++batches_;
  return x;
}

void LayerProfiler::backward(const xg::Tensor& loss) {
  active_profiler = this;
  const auto start = Clock::now();
  std::fill(backward_stamps_.begin(), backward_stamps_.end(), start);
  loss.backward();
  const auto end = Clock::now();
  active_profiler = nullptr;
  // Layer i's backward runs after the gradient reached its output probe (stamp i) and before it reached
  // the probe of layer i-1's output (stamp i-1); the first layer's ends when backward returns.
  for (size_t i = 0; i < rows_.size(); ++i) {
    const auto finished = i == 0 ? end : backward_stamps_[i - 1];
    rows_[i].backward_seconds += std::max(0.0, std::chrono::duration<double>(finished - backward_stamps_[i]).count());
  }
  const double loss_part = std::chrono::duration<double>(backward_stamps_.back() - start).count();
  add_other("loss backward", loss_part);
}

void LayerProfiler::add_other(const std::string& name, double seconds) {
  for (auto& [existing, total] : others_)
    if (existing == name) {
      total += seconds;
      return;
    }
  others_.emplace_back(name, seconds);
}

void LayerProfiler::report(std::ostream& out) const {
  if (batches_ == 0) return;
  const double per_batch = 1000.0 / static_cast<double>(batches_);
  double total = 0.0;
  for (const Row& row : rows_) total += row.forward_seconds + row.backward_seconds;
  for (const auto& other : others_) total += other.second;
  out << fmt::format("time per batch over {} batches (ms; share of the measured total):\n", batches_);
  out << fmt::format("  {:<28} {:>10} {:>10} {:>10} {:>7}\n", "layer", "forward", "backward", "sum", "share");
  for (const Row& row : rows_) {
    const double sum = row.forward_seconds + row.backward_seconds;
    out << fmt::format("  {:<28} {:>10.3f} {:>10.3f} {:>10.3f} {:>6.1f}%\n", row.name, row.forward_seconds * per_batch,
                       row.backward_seconds * per_batch, sum * per_batch, 100.0 * sum / total);
  }
  for (const auto& [name, seconds] : others_)
    out << fmt::format("  {:<28} {:>10} {:>10} {:>10.3f} {:>6.1f}%\n", name, "", "", seconds * per_batch, 100.0 * seconds / total);
  out << fmt::format("  {:<28} {:>10} {:>10} {:>10.3f}\n", "total", "", "", total * per_batch);
}

}  // namespace training
