#pragma once
/// Where a training step's time goes, layer by layer: forward and backward wall time of each layer of a
/// sequential model, plus the loss, the optimizer step and the data loading around them.
///
///     std::vector<std::pair<std::string, nn::AnyModule>> layers = ...;   // the model's layers, in order
///     nn::Sequential model(layers);                         // what training uses
///     training::LayerProfiler profiler(layers);             // the same modules, timed one by one
///     Tensor logits = profiler.forward(batch.data);         // times each layer's forward
///     Tensor loss = F::cross_entropy(logits, batch.target);
///     profiler.backward(loss);                              // times each layer's backward
///     profiler.report(std::cout);                           // a table, per batch, slowest first
///
/// Backward times come from zero-copy probes (custom autograd Functions whose backward only stamps the
/// clock) placed after every layer: a layer's backward runs between the probe after it and the probe
/// before it, so its time is the difference of the two stamps. The engine runs one node at a time, so the
/// attribution is exact up to the probes' own cost (~1 us each).
#include <chrono>
#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

#include <xgrad/xgrad.hpp>

namespace training {

class LayerProfiler {
 public:
  /// The layers of a sequential model (the same list nn::Sequential's named constructor takes).
  explicit LayerProfiler(std::vector<std::pair<std::string, xg::nn::AnyModule>> layers);
  /// The model's forward, with timing and backward probes.
  xg::Tensor forward(const xg::Tensor& input);
  /// loss.backward(), timed per layer.
  void backward(const xg::Tensor& loss);
  /// Adds time spent outside the model (e.g. "optimizer step", "data") under `name`.
  void add_other(const std::string& name, double seconds);
  /// Prints milliseconds per batch for each layer's forward and backward and for the other entries, with
  /// each row's share of the total.
  void report(std::ostream& out) const;
  int64_t batches() const { return batches_; }

 private:
  struct Row {
    std::string name;
    double forward_seconds = 0.0, backward_seconds = 0.0;
  };
  std::vector<std::pair<std::string, xg::nn::AnyModule>> layers_;
  std::vector<Row> rows_;
  std::vector<std::pair<std::string, double>> others_;
  std::vector<std::chrono::steady_clock::time_point> backward_stamps_;  // one per layer output
  int64_t batches_ = 0;
  friend struct BackwardProbe;
};

}  // namespace training
