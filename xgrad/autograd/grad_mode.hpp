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
/// Whether an xg::InferenceMode guard is active on this thread (its own flag, apart from GradMode).
struct InferenceModeState {
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

/// libtorch's c10::InferenceMode (`torch::InferenceMode guard;`): no recording for its scope, on this
/// thread; `InferenceMode(false)` changes nothing. xgrad has no separate "inference tensor" kind: a
/// tensor made inside the scope is an ordinary tensor without history, which PyTorch would also allow
/// in every use except saving it for a later backward or modifying it in place outside the scope
/// (PyTorch errors there; xgrad allows both, with correct results).
class InferenceMode {
 public:
  explicit InferenceMode(bool enabled = true)
      : previous_grad_(autograd::GradMode::is_enabled()), previous_inference_(autograd::InferenceModeState::is_enabled()) {
    if (!enabled) return;
    autograd::GradMode::set_enabled(false);
    autograd::InferenceModeState::set_enabled(true);
  }
  ~InferenceMode() {
    autograd::GradMode::set_enabled(previous_grad_);
    autograd::InferenceModeState::set_enabled(previous_inference_);
  }
  InferenceMode(const InferenceMode&) = delete;
  InferenceMode& operator=(const InferenceMode&) = delete;
  /// Whether an InferenceMode guard is active on this thread.
  static bool is_enabled() { return autograd::InferenceModeState::is_enabled(); }

 private:
  bool previous_grad_;
  bool previous_inference_;
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
