#pragma once
/// make_data_loader: libtorch's data loader (torch::data::make_data_loader / StatelessDataLoader).
///
///   auto dataset = xg::data::datasets::MNIST(root)
///                      .map(xg::data::transforms::Normalize<>(0.1307, 0.3081))
///                      .map(xg::data::transforms::Stack<>());
///   auto loader = xg::data::make_data_loader<xg::data::samplers::SequentialSampler>(
///       std::move(dataset), xg::data::DataLoaderOptions().batch_size(64).workers(2));
///   for (auto& batch : *loader) { ... batch.data, batch.target ... }
///
/// Each begin() starts an epoch: the sampler is reset and batches are requested from it until it runs
/// out (with drop_last, a short last batch ends the epoch). With workers(0) a batch is made on the calling
/// thread when the iterator advances; with workers(n) n threads, each with its own copy of the dataset,
/// prepare up to max_jobs batches ahead, handed out in the sampler's order unless enforce_ordering(false).
/// An exception while making a batch reaches the caller as xg::Error when the iterator reaches that
/// batch; timeout bounds the wait for a worker. Batches are made with gradient recording off and with
/// data::batch_generator() seeded per batch from the loader's generator (see batch_generator.hpp).
/// One iteration at a time per loader: begin() abandons the previous epoch's batches.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "xgrad/autograd/error.hpp"
#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/data/batch_generator.hpp"
#include "xgrad/data/data_loader_options.hpp"
#include "xgrad/data/samplers.hpp"

namespace xg::data {

namespace detail {

/// One finished job: its sequence number, the batch (type-erased) or the exception that made it fail.
struct LoaderResult {
  uint64_t sequence = 0;
  std::shared_ptr<void> batch;
  std::exception_ptr error;
};

/// The worker threads of a loader and the queues between them and the caller. Jobs and results carry an
/// epoch: start_epoch() forgets queued jobs and the results of jobs still running from the epoch before.
class LoaderWorkers {
 public:
  using Work = std::function<std::shared_ptr<void>(size_t worker)>;
  explicit LoaderWorkers(size_t workers);
  ~LoaderWorkers();
  LoaderWorkers(const LoaderWorkers&) = delete;
  LoaderWorkers& operator=(const LoaderWorkers&) = delete;
  void start_epoch();
  void submit(uint64_t sequence, Work work);
  /// The result with the next sequence number (in_order) or the first to finish; waits at most timeout.
  LoaderResult next(bool in_order, const std::optional<std::chrono::milliseconds>& timeout);
  /// Stops the threads (queued jobs are dropped; running ones finish first).
  void join();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

/// Validates options for make_data_loader (batch size, max_jobs, no classic-loader options).
void check_loader_options(const DataLoaderOptions& options);
/// The loader generator's first state: options.seed or a draw from xg's global generator.
uint64_t loader_seed(const DataLoaderOptions& options);
/// A loader generator's state as text, and back (xg::Error naming `loader` for a string that is not one).
std::string generator_to_string(const std::mt19937_64& generator);
std::mt19937_64 generator_from_string(const std::string& state, const char* loader);
/// Rethrows a worker's exception as xg::Error (an xg::Error as it is; anything else wrapped with its message).
[[noreturn]] void rethrow_worker_error(const std::exception_ptr& error, uint64_t sequence);

template <class Request>
size_t request_size(const Request& request) {
  return static_cast<size_t>(request.size());
}
inline size_t request_size(size_t request) { return request; }

}  // namespace detail

template <class Dataset, class Sampler>
class StatelessDataLoader {
 public:
  using DatasetType = Dataset;
  using SamplerType = Sampler;
  using BatchType = typename Dataset::BatchType;
  using BatchRequestType = typename Sampler::BatchRequestType;

  StatelessDataLoader(Dataset dataset, Sampler sampler, DataLoaderOptions options)
      : sampler_(std::move(sampler)), options_(std::move(options)) {
    detail::check_loader_options(options_);
    generator_.seed(detail::loader_seed(options_));
    max_jobs_ = options_.max_jobs_.value_or(2 * options_.workers_);
    if (options_.workers_ == 0) {
      main_thread_dataset_.emplace(std::move(dataset));
    } else {
      static_assert(std::is_copy_constructible_v<Dataset>, "make_data_loader: with workers, each worker needs a copy of the dataset");
      worker_datasets_.reserve(options_.workers_);
      for (size_t w = 0; w < options_.workers_; ++w) worker_datasets_.push_back(dataset);
      workers_ = std::make_unique<detail::LoaderWorkers>(options_.workers_);
    }
  }
  ~StatelessDataLoader() { join(); }
  StatelessDataLoader(const StatelessDataLoader&) = delete;
  StatelessDataLoader& operator=(const StatelessDataLoader&) = delete;

  class Iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = BatchType;
    using difference_type = std::ptrdiff_t;
    using pointer = BatchType*;
    using reference = BatchType&;
    BatchType& operator*() { return *batch_; }
    BatchType* operator->() { return &*batch_; }
    Iterator& operator++() {
      batch_ = loader_->next();
      return *this;
    }
    /// Iterators are equal when both are past the end (or are the same iterator).
    bool operator==(const Iterator& other) const { return this == &other || (!batch_ && !other.batch_); }
    bool operator!=(const Iterator& other) const { return !(*this == other); }

   private:
    friend class StatelessDataLoader;
    Iterator(StatelessDataLoader* loader, std::optional<BatchType> batch) : loader_(loader), batch_(std::move(batch)) {}
    StatelessDataLoader* loader_;
    std::optional<BatchType> batch_;
  };

  /// Starts an epoch and returns an iterator at its first batch.
  Iterator begin() {
    XG_CHECK(!joined_, "DataLoader: begin() after join(); the workers are stopped");
    sampler_.reset(std::nullopt);
    exhausted_ = false;
    in_flight_ = 0;
    sequence_ = 0;
    if (workers_) {
      workers_->start_epoch();
      prefetch();
    }
    return Iterator(this, next());
  }
  Iterator end() { return Iterator(this, std::nullopt); }
  /// Stops the worker threads (the destructor does it too).
  void join() {
    if (workers_) workers_->join();
    joined_ = true;
  }
  const DataLoaderOptions& options() const noexcept { return options_; }
  /// The loader's generator (each batch's batch_generator() seed) as text. Saved at an epoch boundary
  /// together with xg's global generator (RandomSampler draws each epoch's permutation from it; an
  /// optim::Checkpoint saves it) and restored with set_generator_state, the epochs that follow are the
  /// same as in an uninterrupted run.
  std::string generator_state() const { return detail::generator_to_string(generator_); }
  void set_generator_state(const std::string& state) { generator_ = detail::generator_from_string(state, "make_data_loader"); }
  Sampler& sampler() noexcept { return sampler_; }
  const Sampler& sampler() const noexcept { return sampler_; }

 private:
  std::optional<BatchRequestType> next_request() {
    if (exhausted_) return std::nullopt;
    std::optional<BatchRequestType> request = sampler_.next(static_cast<size_t>(options_.batch_size_));
    if (!request || (options_.drop_last_ && detail::request_size(*request) < static_cast<size_t>(options_.batch_size_))) {
      exhausted_ = true;
      return std::nullopt;
    }
    return request;
  }

  static BatchType make_batch(Dataset& dataset, BatchRequestType request, uint64_t seed) {
    NoGradGuard no_grad;  // data preparation never records, on any thread
    detail::BatchGeneratorScope generator(seed);
    return dataset.get_batch(std::move(request));
  }

  void prefetch() {
    while (in_flight_ < max_jobs_) {
      std::optional<BatchRequestType> request = next_request();
      if (!request) return;
      const uint64_t seed = generator_();  // drawn here, in request order, whatever the worker timing
      workers_->submit(sequence_++, [this, request = std::move(*request), seed](size_t worker) mutable -> std::shared_ptr<void> {
        return std::make_shared<BatchType>(make_batch(worker_datasets_[worker], std::move(request), seed));
      });
      ++in_flight_;
    }
  }

  std::optional<BatchType> next() {
    if (!workers_) {
      std::optional<BatchRequestType> request = next_request();
      if (!request) return std::nullopt;
      return make_batch(*main_thread_dataset_, std::move(*request), generator_());
    }
    if (in_flight_ == 0) return std::nullopt;
    detail::LoaderResult result = workers_->next(options_.enforce_ordering_, options_.timeout_);
    --in_flight_;
    prefetch();
    if (result.error) detail::rethrow_worker_error(result.error, result.sequence);
    return std::move(*std::static_pointer_cast<BatchType>(result.batch));
  }

  Sampler sampler_;
  DataLoaderOptions options_;
  std::mt19937_64 generator_;
  size_t max_jobs_ = 0, in_flight_ = 0;
  uint64_t sequence_ = 0;
  bool exhausted_ = false, joined_ = false;
  std::optional<Dataset> main_thread_dataset_;
  std::vector<Dataset> worker_datasets_;
  std::unique_ptr<detail::LoaderWorkers> workers_;  // last: its threads stop before the datasets go
};

/// A loader over `dataset` drawing requests from `sampler`.
template <class Sampler = samplers::RandomSampler, class Dataset>
std::unique_ptr<StatelessDataLoader<Dataset, Sampler>> make_data_loader(Dataset dataset, Sampler sampler, DataLoaderOptions options) {
  return std::make_unique<StatelessDataLoader<Dataset, Sampler>>(std::move(dataset), std::move(sampler), std::move(options));
}

/// A loader over `dataset` with a Sampler made from the dataset's size (RandomSampler by default).
template <class Sampler = samplers::RandomSampler, class Dataset,
          class = std::enable_if_t<std::is_constructible_v<Sampler, size_t>>>
std::unique_ptr<StatelessDataLoader<Dataset, Sampler>> make_data_loader(Dataset dataset, DataLoaderOptions options = DataLoaderOptions()) {
  const std::optional<size_t> size = dataset.size();
  XG_CHECK(size.has_value(),
           "make_data_loader: the dataset has no size (a stream dataset), so the sampler cannot be made from it; pass a "
           "sampler, e.g. samplers::StreamSampler(epoch_size)");
  return make_data_loader<Sampler>(std::move(dataset), Sampler(*size), std::move(options));
}

}  // namespace xg::data
