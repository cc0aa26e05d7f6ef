#pragma once
/// Datasets: an indexable collection of (data, target) examples that can also hand out whole
/// batches (TensorDataset and MNIST do that with one gather instead of N small copies).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "xgrad/autograd/tensor.hpp"
#include "xgrad/data/example.hpp"

namespace xg::data {

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  /// Example `index` (0 <= index < size()).
  virtual Example<> get(int64_t index) const = 0;
  /// Examples at `indices` stacked into [N, ...]; the default stacks get(i).
  virtual Example<> get_batch(const std::vector<int64_t>& indices) const;
};

/// Rows of two tensors: data [N, ...], targets [N, ...].
class TensorDataset : public Dataset {
 public:
  TensorDataset(Tensor data, Tensor targets);
  int64_t size() const override { return data_.size(0); }
  Example<> get(int64_t index) const override;
  Example<> get_batch(const std::vector<int64_t>& indices) const override;
  const Tensor& data() const { return data_; }
  const Tensor& targets() const { return targets_; }

 protected:
  TensorDataset() = default;
  void set(Tensor data, Tensor targets);

 private:
  Tensor data_, targets_;
};

/// A view of some examples of another dataset.
class Subset : public Dataset {
 public:
  Subset(std::shared_ptr<const Dataset> base, std::vector<int64_t> indices);
  int64_t size() const override { return static_cast<int64_t>(indices_.size()); }
  Example<> get(int64_t index) const override;
  Example<> get_batch(const std::vector<int64_t>& indices) const override;
  const std::vector<int64_t>& indices() const { return indices_; }

 private:
  std::shared_ptr<const Dataset> base_;
  std::vector<int64_t> indices_;
};

/// Splits a dataset into non-overlapping random subsets of the given lengths (they must add up to
/// its size), reproducibly for a seed.
std::vector<std::shared_ptr<Subset>> random_split(std::shared_ptr<const Dataset> dataset, const std::vector<int64_t>& lengths,
                                                  uint64_t seed);

/// MNIST or Fashion-MNIST from `root` holding train-images-idx3-ubyte, train-labels-idx1-ubyte,
/// t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (each raw or with ".gz"). Images become float32
/// [N, 1, 28, 28] in [0, 1] (as PyTorch's ToTensor), labels int64 [N].
namespace detail {
/// MNIST's images (float32 [N, 1, rows, cols] in [0, 1]) and labels (int64 [N]), validated.
std::pair<Tensor, Tensor> read_mnist(const std::string& root, bool train);
}  // namespace detail

class MNIST : public TensorDataset {
 public:
  enum class Mode { kTrain, kTest };
  MNIST(const std::string& root, Mode mode = Mode::kTrain);
  MNIST(const std::string& root, bool train);
  const Tensor& images() const { return data(); }
};

/// A numeric CSV file: every column but the target becomes a float32 feature; the target column
/// becomes int64 class labels (or float32 values with target_dtype kFloat32).
struct CSVOptions {
  std::optional<std::string> target_name;   ///< target column by header name ...
  int64_t target_index = -1;                ///< ... or by position (negative counts from the end)
  bool has_header = true;
  char delimiter = ',';
  Dtype target_dtype = kInt64;
  CSVOptions& target_column(const std::string& name) { target_name = name; return *this; }
  CSVOptions& target_column(int64_t index) { target_index = index; target_name.reset(); return *this; }
  CSVOptions& header(bool value) { has_header = value; return *this; }
  CSVOptions& delim(char value) { delimiter = value; return *this; }
  CSVOptions& target_type(Dtype value) { target_dtype = value; return *this; }
};

class CSVDataset : public TensorDataset {
 public:
  CSVDataset(const std::string& path, CSVOptions options = {});
  const std::vector<std::string>& feature_names() const { return feature_names_; }

 private:
  std::vector<std::string> feature_names_;
};

}  // namespace xg::data
