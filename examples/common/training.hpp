#pragma once
/// Training helpers shared by the examples: the common command line, a progress bar, per-epoch summaries,
/// a metrics CSV and a PNG plot of the curves, early stopping, evaluation, checkpoints with exact --resume,
/// and fit(), the loop that strings all of them together for a classifier.
///
/// Two ways to use it:
///
/// 1. The whole loop (most examples):
///
///        CLI::App app{"what this example does"};
///        training::CommonOptions common;                       // set the example's defaults first
///        common.epochs = 8;
///        training::add_common_options(app, common);
///        CLI11_PARSE(app, argc, argv);
///        training::apply_common_options(common, "fashion_mnist_mlp");  // seed, threads, output directory
///        auto data = training::load_fashion_mnist(common);     // train / validation / test
///        ... build model, optimizer (and scheduler) ...
///        training::TrainSetup setup;
///        setup.name = "fashion_mnist_mlp";
///        setup.model = model.ptr();  setup.forward = [&](const xg::Tensor& x) { return model(x); };
///        setup.optimizer = &optimizer;
///        setup.train_loader = &train_loader;  setup.val_loader = &val_loader;  setup.test_loader = &test_loader;
///        training::FitResult result = training::fit(setup, common);
///        return result.exit_code();                            // non-zero when the loss did not go down
///
///    with the whole of main inside training::run_main(argc, argv, [](int argc, char** argv) { ... }), which
///    reports any exception as one "error:" line and a non-zero exit code.
///
/// 2. The pieces, for a loop of your own (the book's SGD loops, a GAN): ProgressBar, evaluate(), MetricsLog
///    (CSV + plot), EarlyStopping, xg::optim::Checkpoint, format_duration(), is_terminal(), and
///    LayerProfiler (common/profile.hpp: per-layer forward/backward timing).
///
/// Outputs (in --out-dir, default "runs/<name>"): metrics.csv, curves.png (when gnuplot is on PATH; the
/// script that drew it is curves.png.gp), checkpoint.safetensors (each epoch: model, optimizer, scheduler,
/// epoch, RNG, loader and metric history), model.safetensors (final weights, loadable with xg::nn::load).
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <xgrad/xgrad.hpp>

namespace training {

using xg::Tensor;

// ---- main -------------------------------------------------------------------------------------------

/// Every example's main: `return training::run_main(argc, argv, [](int argc, char** argv) { ... });`.
/// Runs body and turns any exception that leaves it (xg::Error, std::bad_alloc, any std::exception or
/// anything else) into "<program>: error: <what>" on stderr and exit code 1, instead of std::terminate.
int run_main(int argc, char** argv, const std::function<int(int, char**)>& body);

// ---- command line -----------------------------------------------------------------------------------

/// The largest --threads the examples accept (far beyond any machine they run on; a typo like 100000 is
/// refused by the command line instead of trying to start that many threads).
constexpr int kMaxThreads = 1024;

/// The options every training example shares. Set the fields to the example's defaults before
/// add_common_options: they become the defaults --help shows.
struct CommonOptions {
  int64_t epochs = 10;            ///< --epochs
  int64_t batch_size = 64;        ///< --batch-size
  double lr = 1e-3;               ///< --lr (the optimizer's learning rate)
  uint64_t seed = 0;              ///< --seed (model init, dropout, shuffling, the validation split)
  std::string out_dir;            ///< --out-dir (empty: "runs/<example name>")
  bool resume = false;            ///< --resume (continue from <out-dir>/checkpoint.safetensors)
  int64_t stop_after = 0;         ///< --stop-after (stop after this epoch as if interrupted; 0 = run all epochs)
  int64_t patience = 0;           ///< --patience (stop after N epochs without a better validation loss; 0 = off)
  int threads = 0;                ///< --threads (xg::set_num_threads; 0 = xgrad's default, see parallel.hpp)
  int64_t limit_train = 0;        ///< --limit-train (use only N training examples; 0 = all)
  int64_t limit_test = 0;         ///< --limit-test (use only N test examples; 0 = all)
  double val_fraction = 0.1;      ///< --val-fraction (of the training set, held out for validation)
  bool no_progress = false;       ///< --no-progress (only the per-epoch summaries)
  std::string data_dir;           ///< --data-dir (empty: the example's dataset default)
  /// --fail-in-epoch (hidden, for the tests): throw in the middle of epoch N, as a crash would, to check
  /// that the checkpoint of the epoch before survives and the run exits non-zero. 0 = never.
  int64_t fail_in_epoch = 0;
};

/// CLI11 check for a size option (widths, layers, steps): an integer in [minimum, maximum]. The maxima are
/// far above any sensible run; they turn typos like --channels 100000 into a usage error instead of an
/// allocation of terabytes.
inline CLI::Range size_range(int64_t maximum, int64_t minimum = 1) { return CLI::Range(minimum, maximum); }

/// Adds --epochs, --batch-size, --lr, --seed, --out-dir, --resume, --stop-after, --patience, --threads,
/// --limit-train, --limit-test, --val-fraction, --no-progress and --data-dir to `app`, bound to `options`.
void add_common_options(CLI::App& app, CommonOptions& options);

/// After parsing: validates the values (an error message and exit(2) on nonsense), seeds xg's generator,
/// sets the OpenBLAS thread count, fills out_dir with "runs/<name>" when empty and creates it.
void apply_common_options(CommonOptions& options, const std::string& name);

// ---- data -----------------------------------------------------------------------------------------

/// Train / validation / test splits of one dataset.
struct DataSplits {
  std::shared_ptr<const xg::data::Dataset> train, val, test;
};

/// The default Fashion-MNIST location (Debian's dataset-fashion-mnist package), or $XGRAD_FASHION_MNIST.
std::string default_fashion_mnist_dir();

/// Fashion-MNIST (xg::data::MNIST, images [N, 1, 28, 28] in [0, 1]) from options.data_dir (or the
/// default), shrunk to --limit-train / --limit-test random examples and with --val-fraction of the
/// training examples held out by random_split (seeded by --seed: the split is the same on --resume).
/// A missing dataset prints how to install it and exits with code 2.
DataSplits load_fashion_mnist(const CommonOptions& options);

/// A training loader's options: options.batch_size, shuffled with seed options.seed + 1, and the last batch
/// dropped when it would hold a single example (train_size % batch_size == 1). BatchNorm in training mode
/// cannot normalise one example (PyTorch: "Expected more than 1 value per channel when training"); any
/// other size keeps every example, so runs whose last batch is larger are unchanged.
xg::data::DataLoaderOptions train_loader_options(const CommonOptions& options, int64_t train_size);

/// Fashion-MNIST's class names, by label.
const std::vector<std::string>& fashion_mnist_classes();

// ---- terminal output ----------------------------------------------------------------------------------

/// Whether stdout is a terminal (progress bars redraw in place there; otherwise plain log lines).
bool is_terminal();

/// "1m05s", "12.3s", "850ms".
std::string format_duration(double seconds);

/// One epoch's progress. On a terminal: a bar redrawn in place at most 10 times a second with batches
/// done, samples/s, running loss and ETA. Otherwise (CI, a file): a plain line at every 25% of the epoch.
/// Disabled entirely (silent) when `enabled` is false.
class ProgressBar {
 public:
  /// label: "epoch 3/10"; total_batches: batches this epoch.
  ProgressBar(std::string label, int64_t total_batches, bool enabled = true);
  /// Call after each batch with its size and its loss (the bar shows the sample-weighted running mean).
  void update(int64_t batch_samples, double batch_loss);
  /// Clears the bar (terminal) so the caller's summary line takes its place. Called by the destructor too.
  void finish();
  ~ProgressBar();
  /// The sample-weighted mean loss of the batches so far.
  double mean_loss() const { return samples_ > 0 ? loss_sum_ / static_cast<double>(samples_) : 0.0; }
  int64_t samples() const { return samples_; }
  double elapsed_seconds() const;

 private:
  void draw(bool force);
  std::string label_;
  int64_t total_batches_, batches_ = 0, samples_ = 0;
  double loss_sum_ = 0.0;
  bool enabled_, terminal_, finished_ = false;
  int64_t next_log_quarter_ = 1;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

/// "a, b" of the files among `names` that exist in `dir` ("none" when none does): the final lines list only
/// outputs that were actually written.
std::string written_outputs(const std::string& dir, const std::vector<std::string>& names);

/// "the checkpoint of epoch N is kept" (N > 0) or "no checkpoint was written": the end of the error message
/// of a run that fails in the epoch after last_epoch (checkpoints are written only after whole epochs).
std::string kept_checkpoint_note(int64_t last_epoch);

/// The --fail-in-epoch test hook: throws std::runtime_error when epoch == options.fail_in_epoch and
/// batch_index is the middle batch of the epoch's total_batches.
void maybe_inject_failure(const CommonOptions& options, int64_t epoch, int64_t batch_index, int64_t total_batches);

// ---- evaluation -------------------------------------------------------------------------------------

/// A model's forward pass: a batch of inputs -> logits [N, classes].
using Forward = std::function<Tensor(const Tensor&)>;
/// A training loss: (logits, targets) -> scalar.
using LossFunction = std::function<Tensor(const Tensor&, const Tensor&)>;

/// Mean cross-entropy loss and accuracy over a loader.
struct Evaluation {
  double loss = 0.0;
  double accuracy = 0.0;  ///< fraction in [0, 1]
  int64_t samples = 0;
  int64_t correct = 0;
};

/// Runs `forward` over every batch of `loader` under NoGradGuard with `model` in eval mode (its previous
/// mode is restored): mean cross-entropy of the logits and the fraction of argmax == target.
Evaluation evaluate(xg::nn::Module& model, const Forward& forward, xg::data::DataLoader& loader);
/// evaluate for a module holder or shared_ptr whose forward takes one tensor (nn::Sequential, XG_MODULE types).
template <class Holder, class = decltype(std::declval<Holder>().get())>
Evaluation evaluate(const Holder& model, xg::data::DataLoader& loader) {
  return evaluate(*model.get(), [&](const Tensor& x) { return model->forward(x); }, loader);
}

// ---- metrics, plot, early stopping ----------------------------------------------------------------

/// One epoch's numbers (NaN where not measured, e.g. no validation set).
struct EpochMetrics {
  int64_t epoch = 0;
  double train_loss = 0.0, train_accuracy = 0.0;
  double val_loss = 0.0, val_accuracy = 0.0;
  double lr = 0.0;
  double seconds = 0.0;
};

/// Metric history written as CSV (rewritten whole each epoch, so it always matches the checkpoint) and
/// plotted to PNG with gnuplot: loss curves on the left, accuracy curves on the right.
class MetricsLog {
 public:
  explicit MetricsLog(std::string csv_path);
  void add(const EpochMetrics& metrics);
  const std::vector<EpochMetrics>& history() const { return history_; }
  /// Drops everything after `epoch` (a resumed run replaces the epochs it repeats).
  void truncate(int64_t epoch);
  /// Writes the CSV (header: epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds).
  void write_csv() const;
  /// Writes a PNG of the curves with gnuplot; returns false (and prints a note once) when gnuplot is not
  /// on PATH or fails. `title` heads the plot.
  bool plot(const std::string& png_path, const std::string& title) const;
  /// The history as tensors for a checkpoint (float64 [epochs, 7]) and back.
  Tensor to_tensor() const;
  void from_tensor(const Tensor& table);

 private:
  std::string csv_path_;
  std::vector<EpochMetrics> history_;
};

/// The book's "no improvement in N epochs" rule on a metric where lower is better (a validation loss).
class EarlyStopping {
 public:
  /// patience 0 never stops. min_delta: an improvement must beat the best by more than this.
  explicit EarlyStopping(int64_t patience, double min_delta = 0.0);
  /// Records an epoch's metric; returns true when it is the best so far.
  bool update(double metric);
  /// True after `patience` consecutive epochs without improvement.
  bool should_stop() const { return patience_ > 0 && epochs_without_improvement_ >= patience_; }
  double best() const { return best_; }
  int64_t epochs_without_improvement() const { return epochs_without_improvement_; }

 private:
  int64_t patience_;
  double min_delta_;
  double best_;
  int64_t epochs_without_improvement_ = 0;
};

// ---- the whole loop ---------------------------------------------------------------------------------

/// What fit() trains. Pointers are borrowed: the objects must outlive the call.
struct TrainSetup {
  std::string name;                              ///< names the outputs and the plot ("fashion_mnist_cnn")
  std::shared_ptr<xg::nn::Module> model;         ///< train()/eval(), checkpoints
  Forward forward;                               ///< inputs -> logits
  xg::optim::Optimizer* optimizer = nullptr;
  /// Optional: stepped once per epoch after the epoch's batches, or once per batch when
  /// scheduler_per_batch (OneCycleLR).
  xg::optim::LRScheduler* scheduler = nullptr;
  bool scheduler_per_batch = false;
  /// Optional: stepped with the validation loss after each epoch.
  xg::optim::ReduceLROnPlateau* plateau = nullptr;
  /// The training loss; default: cross-entropy. (Add a penalty here, e.g. + lambda/2 * l2_penalty(model).)
  LossFunction loss;
  /// Gradient clipping by total norm before each step (0 = off).
  double max_grad_norm = 0.0;
  xg::data::DataLoader* train_loader = nullptr;
  xg::data::DataLoader* val_loader = nullptr;    ///< optional (early stopping and the learning check need it)
  xg::data::DataLoader* test_loader = nullptr;   ///< optional: evaluated once at the end
};

/// What fit() did.
struct FitResult {
  std::vector<EpochMetrics> history;
  /// Validation loss of the untrained model (or the first batches' training loss without validation)
  /// and of the final one: the learning check compares them.
  double initial_loss = 0.0, final_loss = 0.0;
  std::optional<Evaluation> test;
  bool stopped_early = false;
  double seconds = 0.0;  ///< wall time of this invocation (training and evaluation)
  std::string out_dir;
  /// True when the final loss is below the initial one (or when no epoch was trained: nothing to check).
  bool learned() const { return history.empty() || final_loss < initial_loss; }
  /// 0 when learned(), else 1 (the examples' smoke tests rely on it).
  int exit_code() const { return learned() ? 0 : 1; }
};

/// Trains setup.model for options.epochs epochs: progress bar, per-epoch summary (train loss and accuracy,
/// validation loss and accuracy, lr, seconds), metrics CSV + plot, a checkpoint after every epoch,
/// early stopping (--patience), exact continuation with --resume (a resumed run ends bit-identical to an
/// uninterrupted one with the same settings; a warning names any setting that differs from the
/// checkpoint's), then the test evaluation and a final line with the test accuracy and the output paths.
/// A non-finite training loss (divergence, e.g. a much too large --lr) throws xg::Error naming the epoch and
/// batch; like any exception mid-epoch it leaves the checkpoint of the last finished epoch as it was.
FitResult fit(const TrainSetup& setup, const CommonOptions& options);

}  // namespace training
