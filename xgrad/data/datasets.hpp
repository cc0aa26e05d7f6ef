#pragma once
/// libtorch's dataset design (torch::data::datasets), for make_data_loader:
///   BatchDataset<Self, Batch, BatchRequest>  get_batch(request) and size() (an optional: a stream has none)
///   Dataset<Self, Example>                   get(index); get_batch collects get(i) for each index
///   StreamDataset<Self, Batch>               a BatchDataset asked for "the next N examples" (samplers::StreamSampler)
///   MapDataset                               dataset.map(transform): the transform's apply_batch over get_batch
///   MNIST, TensorDataset                     ready-made datasets
///   SharedBatchDataset / make_shared_dataset one dataset object shared by a loader's workers; also how a
///                                            classic xg::data::Dataset (TensorDataset(data, targets),
///                                            CSVDataset, Subset, ...) goes into make_data_loader
/// Datasets are values: map() copies or moves its source, and a loader with workers gives each worker a
/// copy (tensors inside share their storage), so a dataset must be copyable and get() may keep state.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <memory>

#include "xgrad/autograd/array_ref.hpp"
#include "xgrad/autograd/error.hpp"
#include "xgrad/autograd/tensor.hpp"
#include "xgrad/data/dataset.hpp"
#include "xgrad/data/example.hpp"

namespace xg::data::datasets {

template <class Source, class AppliedTransform>
class MapDataset;

template <class Self, class Batch, class BatchRequest = ArrayRef<size_t>>
class BatchDataset {
 public:
  using SelfType = Self;
  using BatchType = Batch;
  using BatchRequestType = BatchRequest;
  /// Stateful datasets (libtorch's ChunkDataset) are not supported; every xgrad dataset is stateless.
  static constexpr bool is_stateful = false;

  virtual ~BatchDataset() = default;
  /// The batch for `request` (indices, or a count for a stream dataset).
  virtual Batch get_batch(BatchRequest request) = 0;
  /// The number of examples, or nullopt when the dataset does not know (a stream).
  virtual std::optional<size_t> size() const = 0;

  /// A MapDataset that applies `transform` to every batch of this dataset (a copy of it).
  template <class TransformType>
  MapDataset<Self, TransformType> map(TransformType transform) & {
    return MapDataset<Self, TransformType>(static_cast<Self&>(*this), std::move(transform));
  }
  template <class TransformType>
  MapDataset<Self, TransformType> map(TransformType transform) && {
    return MapDataset<Self, TransformType>(std::move(static_cast<Self&>(*this)), std::move(transform));
  }
};

template <class Self, class SingleExample = Example<>>
class Dataset : public BatchDataset<Self, std::vector<SingleExample>> {
 public:
  using ExampleType = SingleExample;
  /// Example `index` (0 <= index < *size()).
  virtual ExampleType get(size_t index) = 0;
  std::vector<ExampleType> get_batch(ArrayRef<size_t> indices) override {
    std::vector<ExampleType> batch;
    batch.reserve(indices.size());
    for (size_t i : indices) batch.push_back(get(i));
    return batch;
  }
};

/// A dataset read as a stream: get_batch(n) returns the next n examples (the request is a count).
template <class Self, class Batch = std::vector<Example<>>>
using StreamDataset = BatchDataset<Self, Batch, size_t>;

template <class Source, class AppliedTransform>
class MapDataset : public BatchDataset<MapDataset<Source, AppliedTransform>, typename AppliedTransform::OutputBatchType,
                                       typename Source::BatchRequestType> {
  static_assert(std::is_same_v<std::decay_t<typename AppliedTransform::InputBatchType>, typename Source::BatchType>,
                "MapDataset: the transform's input batch type must be the dataset's batch type (e.g. a per-example transform "
                "such as Normalize<> before Stack<>, which turns std::vector<Example<>> into one Example<>)");

 public:
  using DatasetType = Source;
  using TransformType = AppliedTransform;
  using BatchRequestType = typename Source::BatchRequestType;
  using OutputBatchType = typename AppliedTransform::OutputBatchType;

  MapDataset(Source dataset, AppliedTransform transform) : dataset_(std::move(dataset)), transform_(std::move(transform)) {}
  OutputBatchType get_batch(BatchRequestType request) override { return transform_.apply_batch(dataset_.get_batch(std::move(request))); }
  std::optional<size_t> size() const override { return dataset_.size(); }
  const Source& dataset() const noexcept { return dataset_; }
  Source& dataset() noexcept { return dataset_; }
  const AppliedTransform& transform() const noexcept { return transform_; }

 private:
  Source dataset_;
  AppliedTransform transform_;
};

/// libtorch's free spelling of dataset.map(transform).
template <class Source, class AppliedTransform>
MapDataset<Source, AppliedTransform> map(Source dataset, AppliedTransform transform) {
  return MapDataset<Source, AppliedTransform>(std::move(dataset), std::move(transform));
}

/// Rows of one tensor as TensorExamples (an example with data and no target); the libtorch form. For
/// (data, target) pairs see xg::data::TensorDataset.
struct TensorDataset : public Dataset<TensorDataset, TensorExample> {
  explicit TensorDataset(Tensor tensor);
  /// The tensors stacked along a new first dimension.
  explicit TensorDataset(const std::vector<Tensor>& tensors);
  TensorExample get(size_t index) override;
  std::optional<size_t> size() const override { return static_cast<size_t>(tensor.size(0)); }
  Tensor tensor;
};

/// MNIST or Fashion-MNIST from `root` (train-images-idx3-ubyte, train-labels-idx1-ubyte,
/// t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each raw or ".gz"), as libtorch's: images float32
/// [N, 1, 28, 28] in [0, 1], targets int64 [N]; get(i) is {images[i], targets[i]} (views, no copy).
class MNIST : public Dataset<MNIST> {
 public:
  enum class Mode { kTrain, kTest };
  explicit MNIST(const std::string& root, Mode mode = Mode::kTrain);
  Example<> get(size_t index) override;
  std::optional<size_t> size() const override { return static_cast<size_t>(images_.size(0)); }
  bool is_train() const noexcept { return train_; }
  const Tensor& images() const { return images_; }
  const Tensor& targets() const { return targets_; }

 private:
  Tensor images_, targets_;
  bool train_;
};

namespace detail {
template <class Underlying, bool Classic = std::is_base_of_v<::xg::data::Dataset, std::remove_const_t<Underlying>>>
struct SharedBatchTypes {
  using Batch = typename Underlying::BatchType;
  using Request = typename Underlying::BatchRequestType;
};
/// A classic dataset's batch is one stacked Example<> and its request a list of indices.
template <class Underlying>
struct SharedBatchTypes<Underlying, true> {
  using Batch = Example<>;
  using Request = ArrayRef<size_t>;
};
}  // namespace detail

/// libtorch's SharedBatchDataset: a dataset held by shared_ptr, so the workers of a loader share one object
/// (and its state) instead of each copying it; dereference it to reach the dataset. Its get_batch may run on
/// several workers at once. It also adapts a classic xg::data::Dataset (const or not) to this design:
///   auto dataset = datasets::make_shared_dataset<data::TensorDataset>(features, labels);
///   auto loader = make_data_loader(dataset, DataLoaderOptions(64).workers(2));   // batches are Example<>
template <class UnderlyingDataset>
class SharedBatchDataset
    : public BatchDataset<SharedBatchDataset<UnderlyingDataset>, typename detail::SharedBatchTypes<UnderlyingDataset>::Batch,
                          typename detail::SharedBatchTypes<UnderlyingDataset>::Request> {
  static constexpr bool kClassic = std::is_base_of_v<::xg::data::Dataset, std::remove_const_t<UnderlyingDataset>>;

 public:
  using BatchType = typename detail::SharedBatchTypes<UnderlyingDataset>::Batch;
  using BatchRequestType = typename detail::SharedBatchTypes<UnderlyingDataset>::Request;
  using UnderlyingDatasetType = UnderlyingDataset;

  /* implicit */ SharedBatchDataset(std::shared_ptr<UnderlyingDataset> dataset) : dataset_(std::move(dataset)) {
    XG_CHECK(dataset_ != nullptr, "SharedBatchDataset: the dataset is null");
  }
  BatchType get_batch(BatchRequestType request) override {
    if constexpr (kClassic) {
      return dataset_->get_batch(std::vector<int64_t>(request.begin(), request.end()));  // checks the range
    } else {
      return dataset_->get_batch(std::move(request));
    }
  }
  std::optional<size_t> size() const override {
    if constexpr (kClassic) {
      return static_cast<size_t>(dataset_->size());
    } else {
      return dataset_->size();
    }
  }
  UnderlyingDataset& operator*() { return *dataset_; }
  const UnderlyingDataset& operator*() const { return *dataset_; }
  UnderlyingDataset* operator->() { return dataset_.get(); }
  const UnderlyingDataset* operator->() const { return dataset_.get(); }

 private:
  std::shared_ptr<UnderlyingDataset> dataset_;
};

/// A SharedBatchDataset holding a UnderlyingDataset made from `args`.
template <class UnderlyingDataset, class... Args>
SharedBatchDataset<UnderlyingDataset> make_shared_dataset(Args&&... args) {
  return SharedBatchDataset<UnderlyingDataset>(std::make_shared<UnderlyingDataset>(std::forward<Args>(args)...));
}

}  // namespace xg::data::datasets
