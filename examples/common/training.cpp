#include "common/training.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <new>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>
#include <xgrad/nn/serialize.hpp>

namespace training {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// The final line reports the program's whole wall time (data loading included), not just fit()'s.
const Clock::time_point program_start = Clock::now();

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

/// Quotes a path for /bin/sh.
std::string shell_quote(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

/// Quotes a string for a gnuplot script (single-quoted: only ' needs doubling).
std::string gnuplot_quote(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("''") : std::string(1, c);
  return quoted + "'";
}

int terminal_width() {
  struct winsize size {};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 20) return size.ws_col;
  return 100;
}

[[noreturn]] void usage_error(const std::string& message) {
  std::cerr << "error: " << message << " (see --help)\n";
  std::exit(2);
}

/// The settings a resumed run must share with the checkpoint to continue exactly (CLI spelling, value).
std::vector<std::pair<std::string, double>> run_settings(const CommonOptions& o) {
  return {{"epochs", static_cast<double>(o.epochs)},           {"batch-size", static_cast<double>(o.batch_size)},
          {"lr", o.lr},                                         {"seed", static_cast<double>(o.seed)},
          {"limit-train", static_cast<double>(o.limit_train)}, {"val-fraction", o.val_fraction}};
}

std::string percent(double fraction) { return std::isnan(fraction) ? "-" : fmt::format("{:.2f}%", 100.0 * fraction); }

}  // namespace

// ---- main -------------------------------------------------------------------------------------------

int run_main(int argc, char** argv, const std::function<int(int, char**)>& body) {
  const std::string program = argc > 0 && argv[0] != nullptr ? fs::path(argv[0]).filename().string() : "example";
  // Flushed first so the error line follows the program's last output line.
  auto fail = [&](const std::string& what) {
    std::cout << std::flush;
    std::cerr << program << ": error: " << what << std::endl;
    return 1;
  };
  try {
    return body(argc, argv);
  } catch (const std::bad_alloc&) {
    return fail("out of memory (std::bad_alloc): try smaller sizes (--batch-size, the model's widths)");
  } catch (const std::exception& error) {
    return fail(error.what());
  } catch (...) {
    return fail("an exception of a type not derived from std::exception");
  }
}

// ---- command line -----------------------------------------------------------------------------------

void add_common_options(CLI::App& app, CommonOptions& o) {
  // Range checks here make CLI11 refuse nonsense with a usage error (exit code 105) before anything runs.
  app.add_option("--epochs", o.epochs, "Training epochs")->capture_default_str()->check(CLI::Range(int64_t{0}, int64_t{1000000}));
  app.add_option("--batch-size", o.batch_size, "Examples per training batch")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  app.add_option("--lr", o.lr, "Learning rate")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--seed", o.seed, "Random seed (initialisation, dropout, shuffling, validation split)")->capture_default_str();
  app.add_option("--out-dir", o.out_dir, "Where metrics.csv, curves.png and the checkpoints go (default runs/<example>)");
  app.add_flag("--resume", o.resume, "Continue from <out-dir>/checkpoint.safetensors exactly where it stopped");
  app.add_option("--stop-after", o.stop_after, "Stop after epoch N as if interrupted (continue later with --resume; 0 = off)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--patience", o.patience, "Early stopping: stop after N epochs without a better validation loss (0 = off)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--threads", o.threads, "threads for xgrad's kernels (0 = OMP_NUM_THREADS or all CPUs)")
      ->capture_default_str()
      ->check(CLI::Range(0, kMaxThreads));
  app.add_option("--limit-train", o.limit_train, "Use only N random training examples (0 = all)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--limit-test", o.limit_test, "Use only N random test examples (0 = all)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--val-fraction", o.val_fraction, "Fraction of the training examples held out for validation")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_flag("--no-progress", o.no_progress, "No progress bar or progress lines, only the per-epoch summaries");
  app.add_option("--data-dir", o.data_dir, "Dataset directory (default: the example's dataset location)");
  app.add_option("--fail-in-epoch", o.fail_in_epoch, "Testing: throw in the middle of epoch N")->group("")->check(CLI::NonNegativeNumber);
}

void apply_common_options(CommonOptions& o, const std::string& name) {
  if (o.epochs < 0) usage_error(fmt::format("--epochs must be >= 0, got {}", o.epochs));
  if (o.batch_size <= 0) usage_error(fmt::format("--batch-size must be positive, got {}", o.batch_size));
  if (!(o.lr > 0) || !std::isfinite(o.lr)) usage_error(fmt::format("--lr must be a positive number, got {}", o.lr));
  if (o.stop_after < 0) usage_error(fmt::format("--stop-after must be >= 0, got {}", o.stop_after));
  if (o.patience < 0) usage_error(fmt::format("--patience must be >= 0, got {}", o.patience));
  if (o.threads < 0 || o.threads > kMaxThreads) usage_error(fmt::format("--threads must be in [0, {}], got {}", kMaxThreads, o.threads));
  if (o.limit_train < 0 || o.limit_test < 0) usage_error("--limit-train and --limit-test must be >= 0");
  if (!(o.val_fraction >= 0 && o.val_fraction < 1)) usage_error(fmt::format("--val-fraction must be in [0, 1), got {}", o.val_fraction));

  xg::manual_seed(o.seed);
  if (o.threads > 0) xg::set_num_threads(o.threads);
  if (o.out_dir.empty()) o.out_dir = (fs::path("runs") / name).string();
  std::error_code error;
  fs::create_directories(o.out_dir, error);
  if (error) {
    std::cerr << "error: cannot create the output directory '" << o.out_dir << "': " << error.message() << "\n";
    std::exit(2);
  }
}

// ---- data -----------------------------------------------------------------------------------------

std::string default_fashion_mnist_dir() {
  const char* from_environment = std::getenv("XGRAD_FASHION_MNIST");
  if (from_environment != nullptr && *from_environment != '\0') return from_environment;
  return "/usr/share/datasets/fashion-mnist";
}

const std::vector<std::string>& fashion_mnist_classes() {
  static const std::vector<std::string> names{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                              "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

DataSplits load_fashion_mnist(const CommonOptions& o) {
  const std::string root = o.data_dir.empty() ? default_fashion_mnist_dir() : o.data_dir;
  std::shared_ptr<const xg::data::Dataset> train, test;
  try {
    train = std::make_shared<xg::data::MNIST>(root, xg::data::MNIST::Mode::kTrain);
    test = std::make_shared<xg::data::MNIST>(root, xg::data::MNIST::Mode::kTest);
  } catch (const std::exception& error) {  // not only xg::Error: a directory or unreadable file may fail in the stream
    std::cerr << "error: cannot read Fashion-MNIST from '" << root << "':\n  " << error.what()
              << "\nInstall it with `bash scripts/setup.sh` (Debian package dataset-fashion-mnist), or point --data-dir "
                 "or $XGRAD_FASHION_MNIST at a directory holding train-images-idx3-ubyte(.gz) and its three siblings.\n";
    std::exit(2);
  }
  // Random subsets (not the first N) so that a small limit still sees every class; fixed seeds so the
  // subsets and the split are the same in a resumed run.
  auto limit = [](std::shared_ptr<const xg::data::Dataset> dataset, int64_t count, uint64_t seed) {
    if (count <= 0 || count >= dataset->size()) return dataset;
    auto parts = xg::data::random_split(dataset, {count, dataset->size() - count}, seed);
    return std::shared_ptr<const xg::data::Dataset>(parts[0]);
  };
  train = limit(train, o.limit_train, o.seed + 101);
  test = limit(test, o.limit_test, o.seed + 102);

  DataSplits splits;
  splits.test = test;
  const int64_t held_out = o.val_fraction > 0 ? std::max<int64_t>(1, std::llround(o.val_fraction * train->size())) : 0;
  if (held_out == 0) {
    splits.train = train;
  } else {
    if (held_out >= train->size()) usage_error("--val-fraction leaves no training examples");
    auto parts = xg::data::random_split(train, {train->size() - held_out, held_out}, o.seed + 103);
    splits.train = parts[0];
    splits.val = parts[1];
  }
  return splits;
}

xg::data::DataLoaderOptions train_loader_options(const CommonOptions& options, int64_t train_size) {
  return xg::data::DataLoaderOptions(options.batch_size)
      .shuffle(true)
      .seed(options.seed + 1)
      .drop_last(train_size > 1 && train_size % options.batch_size == 1);
}

std::string written_outputs(const std::string& dir, const std::vector<std::string>& names) {
  std::string list;
  for (const auto& name : names) {
    std::error_code error;
    if (fs::exists(fs::path(dir) / name, error)) list += (list.empty() ? "" : ", ") + name;
  }
  return list.empty() ? "none" : list;
}

std::string kept_checkpoint_note(int64_t last_epoch) {
  return last_epoch > 0 ? fmt::format("the checkpoint of epoch {} is kept", last_epoch) : std::string("no checkpoint was written");
}

void maybe_inject_failure(const CommonOptions& options, int64_t epoch, int64_t batch_index, int64_t total_batches) {
  if (options.fail_in_epoch > 0 && epoch == options.fail_in_epoch && batch_index == total_batches / 2)
    throw std::runtime_error(fmt::format("failure injected in epoch {}, batch {} (--fail-in-epoch)", epoch, batch_index + 1));
}

// ---- terminal output ----------------------------------------------------------------------------------

bool is_terminal() {
  static const bool terminal = ::isatty(STDOUT_FILENO) == 1;
  return terminal;
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  if (seconds < 1) return fmt::format("{:.0f}ms", seconds * 1000);
  if (seconds < 60) return fmt::format("{:.1f}s", seconds);
  const auto whole = static_cast<int64_t>(std::llround(seconds));
  if (whole < 3600) return fmt::format("{}m{:02d}s", whole / 60, whole % 60);
  return fmt::format("{}h{:02d}m", whole / 3600, (whole % 3600) / 60);
}

ProgressBar::ProgressBar(std::string label, int64_t total_batches, bool enabled)
    : label_(std::move(label)), total_batches_(std::max<int64_t>(total_batches, 1)), enabled_(enabled), terminal_(is_terminal()),
      start_(Clock::now()), last_draw_(start_) {}

ProgressBar::~ProgressBar() { finish(); }

double ProgressBar::elapsed_seconds() const { return seconds_since(start_); }

void ProgressBar::update(int64_t batch_samples, double batch_loss) {
  ++batches_;
  samples_ += batch_samples;
  loss_sum_ += batch_loss * static_cast<double>(batch_samples);
  draw(false);
}

void ProgressBar::draw(bool force) {
  if (!enabled_ || finished_) return;
  const double elapsed = elapsed_seconds();
  const double rate = elapsed > 0 ? static_cast<double>(samples_) / elapsed : 0.0;
  const double eta = batches_ > 0 ? elapsed / static_cast<double>(batches_) * static_cast<double>(total_batches_ - batches_) : kNaN;
  if (terminal_) {
    const auto now = Clock::now();
    if (!force && batches_ < total_batches_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    const std::string right = fmt::format(" {}/{} | {:.0f} samples/s | loss {:.4f} | ETA {}", batches_, total_batches_, rate,
                                          mean_loss(), format_duration(eta));
    const int width = terminal_width() - 1;
    const int bar_width = std::max(10, std::min(40, width - static_cast<int>(label_.size() + right.size()) - 4));
    const int filled = static_cast<int>(bar_width * batches_ / total_batches_);
    std::string bar = std::string(static_cast<size_t>(filled), '#') + std::string(static_cast<size_t>(bar_width - filled), '.');
    std::string line = fmt::format("{} [{}]{}", label_, bar, right);
    if (static_cast<int>(line.size()) > width) line.resize(static_cast<size_t>(std::max(width, 0)));
    std::cout << "\r\033[K" << line << std::flush;
  } else {
    // Plain lines at 25%, 50% and 75% of the epoch (the summary reports 100%).
    while (next_log_quarter_ <= 3 && batches_ * 4 >= next_log_quarter_ * total_batches_) {
      if (batches_ < total_batches_)
        std::cout << fmt::format("{}: {}/{} batches, {:.0f} samples/s, loss {:.4f}, ETA {}\n", label_, batches_, total_batches_, rate,
                                 mean_loss(), format_duration(eta))
                  << std::flush;
      ++next_log_quarter_;
    }
  }
}

void ProgressBar::finish() {
  if (finished_) return;
  finished_ = true;
  if (enabled_ && terminal_) std::cout << "\r\033[K" << std::flush;
}

// ---- evaluation -------------------------------------------------------------------------------------

Evaluation evaluate(xg::nn::Module& model, const Forward& forward, xg::data::DataLoader& loader) {
  xg::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  Evaluation result;
  double loss_sum = 0.0;
  for (const auto& batch : loader) {
    const Tensor logits = forward(batch.data);
    loss_sum += xg::nn::functional::cross_entropy(logits, batch.target, xg::nn::CrossEntropyLossOptions().reduction("sum")).item<double>();
    result.correct += xg::eq(logits.argmax(1), batch.target).sum().item<int64_t>();
    result.samples += batch.target.size(0);
  }
  model.train(was_training);
  if (result.samples > 0) {
    result.loss = loss_sum / static_cast<double>(result.samples);
    result.accuracy = static_cast<double>(result.correct) / static_cast<double>(result.samples);
  }
  return result;
}

// ---- metrics, plot, early stopping ----------------------------------------------------------------

MetricsLog::MetricsLog(std::string csv_path) : csv_path_(std::move(csv_path)) {}

void MetricsLog::add(const EpochMetrics& metrics) { history_.push_back(metrics); }

void MetricsLog::truncate(int64_t epoch) {
  history_.erase(std::remove_if(history_.begin(), history_.end(), [&](const EpochMetrics& m) { return m.epoch > epoch; }),
                 history_.end());
}

void MetricsLog::write_csv() const {
  // Written atomically (xg::nn::AtomicFile), so a reader never sees half a file; a failure only warns.
  std::ostringstream out;
  auto field = [](double value) { return std::isnan(value) ? std::string() : fmt::format("{:.6g}", value); };
  out << "epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds\n";
  for (const auto& m : history_)
    out << m.epoch << ',' << field(m.train_loss) << ',' << field(m.train_accuracy) << ',' << field(m.val_loss) << ','
        << field(m.val_accuracy) << ',' << field(m.lr) << ',' << fmt::format("{:.3f}", m.seconds) << '\n';
  try {
    xg::nn::AtomicFile file("MetricsLog::write_csv", csv_path_);
    const std::string text = out.str();
    file.write(text.data(), text.size());
    file.commit();
  } catch (const xg::Error& error) {
    std::cerr << "warning: " << error.what() << "\n";
  }
}

bool MetricsLog::plot(const std::string& png_path, const std::string& title) const {
  static bool noted = false;
  auto note = [&](const std::string& why) {
    if (!noted) std::cout << "note: " << why << "; no plot of the training curves (metrics.csv has the numbers)\n";
    noted = true;
    return false;
  };
  static const bool have_gnuplot = std::system("command -v gnuplot >/dev/null 2>&1") == 0;
  if (!have_gnuplot) return note("gnuplot is not installed (Debian: apt-get install gnuplot-nox)");
  if (history_.empty()) return false;

  const bool has_val = std::any_of(history_.begin(), history_.end(), [](const EpochMetrics& m) { return !std::isnan(m.val_loss); });
  const std::string script_path = png_path + ".gp";
  {
    std::ofstream script(script_path);
    if (!script) return note("cannot write the gnuplot script '" + script_path + "'");
    const std::string data = gnuplot_quote(csv_path_);
    script << "set terminal pngcairo size 1200,450 font ',10' noenhanced\n"
           << "set output " << gnuplot_quote(png_path) << "\n"
           << "set datafile separator ','\n"
           << "set datafile missing ''\n"
           << "set grid\nset key top right\nset xlabel 'epoch'\n"
           << "set xrange [" << history_.front().epoch - 0.5 << ":" << history_.back().epoch + 0.5 << "]\n"
           << "set xtics 1\n"
           << "set multiplot layout 1,2 title " << gnuplot_quote(title) << "\n"
           << "set ylabel 'cross-entropy loss'\n"
           << "plot " << data << " skip 1 using 1:2 with linespoints lw 2 title 'train'";
    if (has_val) script << ", '' skip 1 using 1:4 with linespoints lw 2 title 'validation'";
    script << "\nset ylabel 'accuracy (%)'\nset key bottom right\n"
           << "plot " << data << " skip 1 using 1:($3*100) with linespoints lw 2 title 'train'";
    if (has_val) script << ", '' skip 1 using 1:($5*100) with linespoints lw 2 title 'validation'";
    script << "\nunset multiplot\n";
  }
  const std::string log_path = png_path + ".log";
  const int status = std::system(("gnuplot " + shell_quote(script_path) + " >" + shell_quote(log_path) + " 2>&1").c_str());
  if (status != 0) return note("gnuplot failed (see " + log_path + ")");
  std::remove(log_path.c_str());
  return true;
}

Tensor MetricsLog::to_tensor() const {
  Tensor table = xg::zeros({static_cast<int64_t>(history_.size()), 7}, xg::kFloat64);
  double* out = table.data_ptr<double>();
  for (const auto& m : history_) {
    for (double value : {static_cast<double>(m.epoch), m.train_loss, m.train_accuracy, m.val_loss, m.val_accuracy, m.lr, m.seconds})
      *out++ = value;
  }
  return table;
}

void MetricsLog::from_tensor(const Tensor& table) {
  XG_CHECK(table.dim() == 2 && table.size(1) == 7 && table.dtype() == xg::kFloat64,
           "MetricsLog: the saved history must be float64 [epochs, 7], got {} {}", xg::dtype_name(table.dtype()),
           xg::shape_string(table.shape()));
  history_.clear();
  const double* in = table.data_ptr<double>();
  for (int64_t row = 0; row < table.size(0); ++row, in += 7)
    history_.push_back({static_cast<int64_t>(in[0]), in[1], in[2], in[3], in[4], in[5], in[6]});
}

EarlyStopping::EarlyStopping(int64_t patience, double min_delta)
    : patience_(patience), min_delta_(min_delta), best_(std::numeric_limits<double>::infinity()) {}

bool EarlyStopping::update(double metric) {
  if (metric < best_ - min_delta_) {
    best_ = metric;
    epochs_without_improvement_ = 0;
    return true;
  }
  ++epochs_without_improvement_;
  return false;
}

// ---- the whole loop ---------------------------------------------------------------------------------

FitResult fit(const TrainSetup& setup, const CommonOptions& options) {
  XG_CHECK(setup.model && setup.forward && setup.optimizer && setup.train_loader,
           "training::fit: model, forward, optimizer and train_loader are required");
  XG_CHECK(!options.out_dir.empty(), "training::fit: out_dir is empty (call apply_common_options first)");
  const auto start = Clock::now();
  const bool show_progress = !options.no_progress;
  const LossFunction loss_function =
      setup.loss ? setup.loss : LossFunction([](const Tensor& logits, const Tensor& target) {
        return xg::nn::functional::cross_entropy(logits, target);
      });

  FitResult result;
  result.out_dir = options.out_dir;
  const fs::path out(options.out_dir);
  const std::string checkpoint_path = (out / "checkpoint.safetensors").string();
  const std::string model_path = (out / "model.safetensors").string();
  const std::string png_path = (out / "curves.png").string();
  MetricsLog metrics((out / "metrics.csv").string());

  xg::optim::Checkpoint checkpoint;
  checkpoint.add("model", *setup.model).add("optimizer", *setup.optimizer);
  if (setup.scheduler != nullptr) checkpoint.add("scheduler", *setup.scheduler);
  if (setup.plateau != nullptr) checkpoint.add("plateau", *setup.plateau);

  std::cout << fmt::format("{}: {} parameters; {} training, {} validation, {} test examples; batch {}, {} epochs\n", setup.name,
                           setup.model->num_parameters(), setup.train_loader->dataset().size(),
                           setup.val_loader ? setup.val_loader->dataset().size() : 0,
                           setup.test_loader ? setup.test_loader->dataset().size() : 0, options.batch_size, options.epochs);

  // Resume, or start fresh with a measurement of the untrained model (the learning check's baseline).
  int64_t start_epoch = 0;
  bool have_initial = false;
  if (options.resume) {
    if (fs::exists(checkpoint_path)) {
      xg::optim::CheckpointState state = checkpoint.load(checkpoint_path);
      start_epoch = state.epoch;
      auto history = state.tensors.find("history");
      XG_CHECK(history != state.tensors.end(), "training::fit: '{}' has no metric history", checkpoint_path);
      metrics.from_tensor(history->second);
      metrics.truncate(start_epoch);
      auto initial = state.scalars.find("initial_loss");
      XG_CHECK(initial != state.scalars.end(), "training::fit: '{}' has no initial_loss", checkpoint_path);
      result.initial_loss = initial->second;
      have_initial = true;
      // The schedule, the split and the batches depend on these: a different value cannot continue exactly.
      for (const auto& [key, value] : run_settings(options)) {
        auto saved = state.scalars.find(key);
        if (saved != state.scalars.end() && saved->second != value)
          std::cout << fmt::format("warning: --resume with --{} {} but the checkpoint was made with {}: the run will not match an "
                                   "uninterrupted one\n",
                                   key, value, saved->second);
      }
      auto loader_state = state.text.find("train_loader");
      XG_CHECK(loader_state != state.text.end(), "training::fit: '{}' has no train_loader state", checkpoint_path);
      setup.train_loader->set_generator_state(loader_state->second);
      std::cout << fmt::format("resumed from {} after epoch {}\n", checkpoint_path, start_epoch);
    } else {
      std::cout << fmt::format("note: --resume: no checkpoint at {}, starting from scratch\n", checkpoint_path);
    }
  }
  if (!have_initial && setup.val_loader != nullptr) {
    const Evaluation initial = evaluate(*setup.model, setup.forward, *setup.val_loader);
    result.initial_loss = initial.loss;
    have_initial = true;
    std::cout << fmt::format("epoch 0 (untrained): val loss {:.4f}, val accuracy {}\n", initial.loss, percent(initial.accuracy));
  }

  EarlyStopping early_stopping(options.patience);
  for (const auto& m : metrics.history()) early_stopping.update(std::isnan(m.val_loss) ? m.train_loss : m.val_loss);

  double last_batches_loss = kNaN;  // mean over the last tenth of the last epoch's batches (no validation set)
  for (int64_t epoch = start_epoch + 1; epoch <= options.epochs; ++epoch) {
    if (early_stopping.should_stop()) break;
    const auto epoch_start = Clock::now();
    const double lr = setup.optimizer->param_groups().front().lr();
    setup.model->train();
    ProgressBar progress(fmt::format("epoch {}/{}", epoch, options.epochs), setup.train_loader->size(), show_progress);
    const int64_t total_batches = setup.train_loader->size();
    const int64_t tenth = std::max<int64_t>(1, total_batches / 10);
    double first_sum = 0.0, last_sum = 0.0;
    int64_t first_count = 0, last_count = 0, batch_index = 0, correct = 0;
    for (const auto& batch : *setup.train_loader) {
      maybe_inject_failure(options, epoch, batch_index, total_batches);
      setup.optimizer->zero_grad();
      const Tensor logits = setup.forward(batch.data);
      const Tensor loss = loss_function(logits, batch.target);
      const double loss_value = loss.item<double>();  // read for the progress bar anyway: the check is free
      if (!std::isfinite(loss_value)) {
        // Thrown before anything is written: the last finished epoch's checkpoint stays the newest output.
        progress.finish();
        XG_ERROR("training::fit: the training loss became {} in epoch {}, batch {}: training diverged (try a smaller --lr); {}",
                 loss_value, epoch, batch_index + 1, kept_checkpoint_note(epoch - 1));
      }
      loss.backward();
      if (setup.max_grad_norm > 0) xg::optim::clip_grad_norm_(setup.optimizer->parameters(), setup.max_grad_norm);
      setup.optimizer->step();
      if (setup.scheduler != nullptr && setup.scheduler_per_batch) setup.scheduler->step();
      {
        xg::NoGradGuard no_grad;
        correct += xg::eq(logits.argmax(1), batch.target).sum().item<int64_t>();
      }
      const int64_t n = batch.target.size(0);
      progress.update(n, loss_value);
      if (batch_index < tenth) first_sum += loss_value, ++first_count;
      if (batch_index >= total_batches - tenth) last_sum += loss_value, ++last_count;
      ++batch_index;
    }
    progress.finish();
    if (!have_initial) {  // no validation set: the first batches of the first epoch are the baseline
      result.initial_loss = first_sum / static_cast<double>(std::max<int64_t>(first_count, 1));
      have_initial = true;
    }
    last_batches_loss = last_sum / static_cast<double>(std::max<int64_t>(last_count, 1));
    if (setup.scheduler != nullptr && !setup.scheduler_per_batch) setup.scheduler->step();

    EpochMetrics m;
    m.epoch = epoch;
    m.train_loss = progress.mean_loss();
    m.train_accuracy = progress.samples() > 0 ? static_cast<double>(correct) / static_cast<double>(progress.samples()) : kNaN;
    m.val_loss = m.val_accuracy = kNaN;
    if (setup.val_loader != nullptr) {
      const Evaluation val = evaluate(*setup.model, setup.forward, *setup.val_loader);
      m.val_loss = val.loss;
      m.val_accuracy = val.accuracy;
      if (setup.plateau != nullptr) setup.plateau->step(val.loss);
    }
    m.lr = lr;
    m.seconds = seconds_since(epoch_start);
    metrics.add(m);
    const bool best = early_stopping.update(std::isnan(m.val_loss) ? m.train_loss : m.val_loss);

    // The checkpoint first, then the CSV and plot derived from the history it holds.
    xg::optim::CheckpointState state;
    state.epoch = epoch;
    state.scalars["initial_loss"] = result.initial_loss;
    for (const auto& [key, value] : run_settings(options)) state.scalars[key] = value;
    state.tensors["history"] = metrics.to_tensor();
    state.text["train_loader"] = setup.train_loader->generator_state();
    checkpoint.save(checkpoint_path, state);
    metrics.write_csv();
    metrics.plot(png_path, fmt::format("{}: training curves", setup.name));

    std::string line = fmt::format("epoch {}/{}: train loss {:.4f} acc {}", epoch, options.epochs, m.train_loss, percent(m.train_accuracy));
    if (setup.val_loader != nullptr) line += fmt::format(" | val loss {:.4f} acc {}", m.val_loss, percent(m.val_accuracy));
    line += fmt::format(" | lr {:.3g} | {}{}", m.lr, format_duration(m.seconds), best && setup.val_loader ? " *" : "");
    std::cout << line << std::endl;

    if (options.stop_after > 0 && epoch >= options.stop_after && epoch < options.epochs) {
      std::cout << fmt::format("stopping after epoch {} (--stop-after); continue with --resume\n", epoch);
      break;
    }
    if (early_stopping.should_stop()) {
      result.stopped_early = true;
      std::cout << fmt::format("early stopping: no improvement in {} epochs (best validation loss {:.4f})\n", options.patience,
                               early_stopping.best());
    }
  }
  result.history = metrics.history();

  xg::nn::save(*setup.model, model_path);
  if (setup.test_loader != nullptr) {
    result.test = evaluate(*setup.model, setup.forward, *setup.test_loader);
    std::cout << fmt::format("test: loss {:.4f}, accuracy {} ({} / {})\n", result.test->loss, percent(result.test->accuracy),
                             result.test->correct, result.test->samples);
  }

  if (!result.history.empty() && !std::isnan(result.history.back().val_loss)) {
    result.final_loss = result.history.back().val_loss;
  } else if (!std::isnan(last_batches_loss)) {
    result.final_loss = last_batches_loss;
  } else if (!result.history.empty()) {
    result.final_loss = result.history.back().train_loss;
  }
  result.seconds = seconds_since(start);
  const double program_seconds = seconds_since(program_start);

  const std::string accuracy = result.test ? fmt::format("test accuracy {}", percent(result.test->accuracy)) : "no test set";
  const int64_t epochs_done = result.history.empty() ? 0 : result.history.back().epoch;
  std::cout << fmt::format("{}: {} after {} epoch{}; {} wall time in all; outputs in {}/ ({})\n", setup.name, accuracy,
                           epochs_done, epochs_done == 1 ? "" : "s", format_duration(program_seconds), options.out_dir,
                           written_outputs(options.out_dir,
                                           {"metrics.csv", "curves.png", "checkpoint.safetensors", "model.safetensors"}));
  if (!result.learned() && !result.history.empty())
    std::cerr << fmt::format("error: the loss did not go down (initial {:.4f}, final {:.4f})\n", result.initial_loss, result.final_loss);
  return result;
}

}  // namespace training
