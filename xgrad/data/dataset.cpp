#include "xgrad/data/dataset.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>

#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/autograd/kernels.hpp"
#include "xgrad/data/idx.hpp"

namespace xg::data {

namespace {
Tensor index_tensor(const std::vector<int64_t>& indices) {
  Tensor index = empty({static_cast<int64_t>(indices.size())}, kInt64);
  std::copy(indices.begin(), indices.end(), index.contiguous_data<int64_t>());
  return index;
}
}  // namespace

Example<> Dataset::get_batch(const std::vector<int64_t>& indices) const {
  XG_CHECK(!indices.empty(), "Dataset::get_batch: expected at least one index");
  TensorList data, targets;
  for (int64_t i : indices) {
    Example<> e = get(i);
    data.push_back(e.data);
    targets.push_back(e.target);
  }
  return {stack(data), stack(targets)};
}

TensorDataset::TensorDataset(Tensor data, Tensor targets) { set(std::move(data), std::move(targets)); }

void TensorDataset::set(Tensor data, Tensor targets) {
  XG_CHECK(data.defined() && targets.defined(), "TensorDataset: data and targets must be defined");
  XG_CHECK(data.dim() >= 1 && targets.dim() >= 1, "TensorDataset: data and targets need a leading example dimension, got shapes {} and {}",
           shape_string(data.shape()), shape_string(targets.shape()));
  XG_CHECK(data.size(0) == targets.size(0), "TensorDataset: {} data rows but {} targets (shapes {} and {})", data.size(0), targets.size(0),
           shape_string(data.shape()), shape_string(targets.shape()));
  data_ = data.detach();
  targets_ = targets.detach();
}

Example<> TensorDataset::get(int64_t index) const {
  XG_CHECK(index >= 0 && index < size(), "TensorDataset: index {} is out of range for a dataset of {} examples", index, size());
  NoGradGuard no_grad;
  return {squeeze(narrow(data_, 0, index, 1), 0), squeeze(narrow(targets_, 0, index, 1), 0)};
}

Example<> TensorDataset::get_batch(const std::vector<int64_t>& indices) const {
  NoGradGuard no_grad;
  Tensor index = index_tensor(indices);  // index_select checks the range
  return {index_select(data_, 0, index), index_select(targets_, 0, index)};
}

Subset::Subset(std::shared_ptr<const Dataset> base, std::vector<int64_t> indices) : base_(std::move(base)), indices_(std::move(indices)) {
  XG_CHECK(base_ != nullptr, "Subset: the base dataset is null");
  for (int64_t i : indices_)
    XG_CHECK(i >= 0 && i < base_->size(), "Subset: index {} is out of range for a dataset of {} examples", i, base_->size());
}

Example<> Subset::get(int64_t index) const {
  XG_CHECK(index >= 0 && index < size(), "Subset: index {} is out of range for a subset of {} examples", index, size());
  return base_->get(indices_[index]);
}

Example<> Subset::get_batch(const std::vector<int64_t>& indices) const {
  std::vector<int64_t> mapped;
  mapped.reserve(indices.size());
  for (int64_t i : indices) {
    XG_CHECK(i >= 0 && i < size(), "Subset: index {} is out of range for a subset of {} examples", i, size());
    mapped.push_back(indices_[i]);
  }
  return base_->get_batch(mapped);
}

std::vector<std::shared_ptr<Subset>> random_split(std::shared_ptr<const Dataset> dataset, const std::vector<int64_t>& lengths,
                                                  uint64_t seed) {
  XG_CHECK(dataset != nullptr, "random_split: the dataset is null");
  int64_t total = 0;
  for (int64_t n : lengths) {
    XG_CHECK(n >= 0, "random_split: lengths must be non-negative, got {}", fmt::format("{}", lengths));
    total = xg::detail::checked_add("random_split", total, n, "the sum of the lengths");  // a wrapped sum could match the size
  }
  XG_CHECK(total == dataset->size(), "random_split: lengths {} add up to {}, but the dataset has {} examples", fmt::format("{}", lengths),
           total, dataset->size());
  std::vector<int64_t> order(static_cast<size_t>(total));
  std::iota(order.begin(), order.end(), int64_t{0});
  std::mt19937_64 generator(seed);
  for (int64_t i = total - 1; i > 0; --i) std::swap(order[i], order[generator() % static_cast<uint64_t>(i + 1)]);
  std::vector<std::shared_ptr<Subset>> parts;
  int64_t offset = 0;
  for (int64_t n : lengths) {
    parts.push_back(std::make_shared<Subset>(dataset, std::vector<int64_t>(order.begin() + offset, order.begin() + offset + n)));
    offset += n;
  }
  return parts;
}

// ---- MNIST -------------------------------------------------------------------------------------
namespace {
std::string find_idx(const std::string& root, const std::string& stem) {
  for (const std::string& candidate : {root + "/" + stem, root + "/" + stem + ".gz"})
    if (std::filesystem::exists(candidate)) return candidate;
  XG_ERROR("MNIST: neither '{}/{}' nor '{}/{}.gz' exists (expected the MNIST/Fashion-MNIST idx files in '{}')", root, stem, root, stem, root);
}
}  // namespace

MNIST::MNIST(const std::string& root, bool train) : MNIST(root, train ? Mode::kTrain : Mode::kTest) {}

MNIST::MNIST(const std::string& root, Mode mode) {
  auto [images, targets] = detail::read_mnist(root, mode == Mode::kTrain);
  set(images, targets);
}

std::pair<Tensor, Tensor> detail::read_mnist(const std::string& root, bool train) {
  const std::string prefix = train ? "train" : "t10k";
  const std::string images_path = find_idx(root, prefix + "-images-idx3-ubyte");
  const std::string labels_path = find_idx(root, prefix + "-labels-idx1-ubyte");
  IdxArray images = read_idx(images_path);
  IdxArray labels = read_idx(labels_path);
  XG_CHECK(images.type_code == 0x08 && images.shape.size() == 3,
           "MNIST: '{}' should hold unsigned bytes (idx type 0x08) of shape [N, rows, cols], got {} (idx type 0x{:02x}) of shape {}",
           images_path, idx_type_name(images.type_code), images.type_code, shape_string(images.shape));
  XG_CHECK(labels.type_code == 0x08 && labels.shape.size() == 1,
           "MNIST: '{}' should hold unsigned bytes (idx type 0x08) of shape [N], got {} (idx type 0x{:02x}) of shape {}", labels_path,
           idx_type_name(labels.type_code), labels.type_code, shape_string(labels.shape));
  XG_CHECK(images.shape[0] == labels.shape[0], "MNIST: '{}' has {} images but '{}' has {} labels", images_path, images.shape[0],
           labels_path, labels.shape[0]);
  const int64_t n = images.shape[0], rows = images.shape[1], cols = images.shape[2];
  Tensor pixels = empty({n, 1, rows, cols}, kFloat32);
  float* dst = pixels.contiguous_data<float>();
  for (size_t i = 0; i < images.bytes.size(); ++i) dst[i] = static_cast<float>(images.bytes[i]) / 255.0f;
  Tensor targets = empty({n}, kInt64);
  for (int64_t i = 0; i < n; ++i) {
    XG_CHECK(labels.bytes[i] <= 9, "MNIST: '{}' has label {} at index {}; expected 0..9", labels_path, labels.bytes[i], i);
    targets.contiguous_data<int64_t>()[i] = labels.bytes[i];
  }
  return {pixels, targets};
}

// ---- CSV -----------------------------------------------------------------------------------------
namespace {
std::vector<std::string> split_line(const std::string& line, char delimiter) {
  std::vector<std::string> fields;
  std::string field;
  std::istringstream stream(line);
  while (std::getline(stream, field, delimiter)) fields.push_back(field);
  if (!line.empty() && line.back() == delimiter) fields.emplace_back();
  for (std::string& f : fields) {
    while (!f.empty() && (f.back() == '\r' || f.back() == ' ' || f.back() == '\t')) f.pop_back();
    size_t start = f.find_first_not_of(" \t");
    f = start == std::string::npos ? "" : f.substr(start);
  }
  return fields;
}

/// A parsed value as float32. A finite number beyond float32's range would silently become inf (and
/// converting it is undefined behaviour in C++), so it is an error; NaN and inf written in the file stay.
float to_float32(double value, const std::string& path, int64_t row, int64_t column) {
  XG_CHECK(!std::isfinite(value) || std::fabs(value) <= static_cast<double>(std::numeric_limits<float>::max()),
           "CSVDataset: '{}' data row {} column {}: {} is outside the range of float32", path, row + 1, column + 1, value);
  return static_cast<float>(value);
}

double parse_number(const std::string& text, const std::string& path, int64_t line, size_t column) {
  XG_CHECK(!text.empty(), "CSVDataset: '{}' line {} column {} is empty; expected a number", path, line, column + 1);
  errno = 0;
  char* end = nullptr;
  double value = std::strtod(text.c_str(), &end);
  XG_CHECK(end == text.c_str() + text.size() && errno != ERANGE, "CSVDataset: '{}' line {} column {}: '{}' is not a number", path, line,
           column + 1, text);
  return value;
}
}  // namespace

CSVDataset::CSVDataset(const std::string& path, CSVOptions options) {
  check_regular_file("CSVDataset", path);
  std::ifstream in(path);
  XG_CHECK(in.good(), "CSVDataset: cannot open '{}'", path);
  XG_CHECK(options.target_dtype == kInt64 || options.target_dtype == kFloat32, "CSVDataset: target_dtype must be int64 or float32, got {}",
           options.target_dtype);
  std::string line;
  int64_t line_number = 0;
  std::vector<std::string> header;
  if (options.has_header) {
    XG_CHECK(static_cast<bool>(std::getline(in, line)), "CSVDataset: '{}' is empty; expected a header line", path);
    ++line_number;
    header = split_line(line, options.delimiter);
  }
  std::vector<std::vector<double>> rows;
  size_t columns = header.size();
  while (std::getline(in, line)) {
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    std::vector<std::string> fields = split_line(line, options.delimiter);
    if (columns == 0) columns = fields.size();
    XG_CHECK(fields.size() == columns, "CSVDataset: '{}' line {} has {} fields; expected {}", path, line_number, fields.size(), columns);
    std::vector<double> values(columns);
    for (size_t c = 0; c < columns; ++c) values[c] = parse_number(fields[c], path, line_number, c);
    rows.push_back(std::move(values));
  }
  XG_CHECK(!rows.empty(), "CSVDataset: '{}' has no data rows", path);
  XG_CHECK(columns >= 2, "CSVDataset: '{}' needs at least one feature column and a target column, got {} column(s)", path, columns);
  int64_t target = options.target_index;
  if (options.target_name) {
    XG_CHECK(options.has_header, "CSVDataset: a target column name ('{}') needs a header line", *options.target_name);
    auto it = std::find(header.begin(), header.end(), *options.target_name);
    XG_CHECK(it != header.end(), "CSVDataset: '{}' has no column named '{}' (columns: {})", path, *options.target_name, fmt::join(header, ", "));
    target = it - header.begin();
  }
  if (target < 0) target += static_cast<int64_t>(columns);
  XG_CHECK(target >= 0 && target < static_cast<int64_t>(columns), "CSVDataset: target column {} is out of range for {} columns",
           options.target_index, columns);
  const int64_t n = static_cast<int64_t>(rows.size()), features = static_cast<int64_t>(columns) - 1;
  Tensor data = empty({n, features}, kFloat32);
  Tensor targets = empty({n}, options.target_dtype);
  for (int64_t r = 0; r < n; ++r) {
    int64_t f = 0;
    for (int64_t c = 0; c < static_cast<int64_t>(columns); ++c) {
      if (c == target) continue;
      data.contiguous_data<float>()[r * features + f++] = to_float32(rows[r][c], path, r, c);
    }
    double t = rows[r][target];
    if (options.target_dtype == kInt64) {
      XG_CHECK(t == std::floor(t), "CSVDataset: '{}' data row {} has target {} which is not an integer class label", path, r + 1, t);
      // Casting a double outside int64's range (or inf) to int64 is undefined behaviour: reject it first.
      XG_CHECK(t >= -9223372036854775808.0 && t < 9223372036854775808.0,
               "CSVDataset: '{}' data row {} has target {} which is outside the range of int64 class labels", path, r + 1, t);
      targets.contiguous_data<int64_t>()[r] = static_cast<int64_t>(t);
    } else {
      targets.contiguous_data<float>()[r] = to_float32(t, path, r, target);
    }
  }
  for (int64_t c = 0; c < static_cast<int64_t>(columns); ++c)
    if (c != target) feature_names_.push_back(header.empty() ? fmt::format("column{}", c) : header[c]);
  set(data, targets);
}

}  // namespace xg::data
