#pragma once
/// Thread-local switches: whether ops record on the tape, and anomaly detection.

namespace xg {

namespace autograd {
struct GradMode {
  static bool is_enabled();
  static void set_enabled(bool enabled);
};
struct AnomalyMode {
  static bool is_enabled();
  static void set_enabled(bool enabled);
};
}  // namespace autograd

/// Disables recording for its scope (this thread only), like torch::NoGradGuard.
class NoGradGuard {
 public:
  NoGradGuard() : previous_(autograd::GradMode::is_enabled()) { autograd::GradMode::set_enabled(false); }
  ~NoGradGuard() { autograd::GradMode::set_enabled(previous_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

/// Sets recording on or off for its scope, like torch::AutoGradMode.
class AutoGradMode {
 public:
  explicit AutoGradMode(bool enabled) : previous_(autograd::GradMode::is_enabled()) {
    autograd::GradMode::set_enabled(enabled);
  }
  ~AutoGradMode() { autograd::GradMode::set_enabled(previous_); }
  AutoGradMode(const AutoGradMode&) = delete;
  AutoGradMode& operator=(const AutoGradMode&) = delete;

 private:
  bool previous_;
};

/// While alive, every op's forward output and every backward result is checked for NaN/Inf; the
/// error names the op, its shapes and the forward op that recorded the failing node.
class DetectAnomalyGuard {
 public:
  DetectAnomalyGuard() : previous_(autograd::AnomalyMode::is_enabled()) { autograd::AnomalyMode::set_enabled(true); }
  ~DetectAnomalyGuard() { autograd::AnomalyMode::set_enabled(previous_); }
  DetectAnomalyGuard(const DetectAnomalyGuard&) = delete;
  DetectAnomalyGuard& operator=(const DetectAnomalyGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace xg
