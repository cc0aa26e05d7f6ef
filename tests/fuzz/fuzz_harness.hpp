#pragma once
/// What each fuzz target does with one input, shared by the libFuzzer executables (tests/fuzz/fuzz_*.cpp,
/// clang only) and by the Catch2 test that replays the seed corpus and every past crash in the ordinary
/// build (tests/test_reliability_fuzz.cpp). The contract under test: any bytes give either a valid result
/// or an xg::Error. Any other exception escapes to libFuzzer (reported as a crash) or fails the Catch2
/// test; memory errors and undefined behaviour are caught by the sanitizers.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <xgrad/xgrad.hpp>

namespace xg::fuzz {

/// An in-memory file (memfd) reachable by a path, because the loaders under test take paths.
class MemoryFile {
 public:
  MemoryFile() {
    fd_ = ::memfd_create("xgrad-fuzz", MFD_CLOEXEC);
    XG_CHECK(fd_ >= 0, "fuzz: memfd_create failed: {}", std::strerror(errno));
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  MemoryFile(const MemoryFile&) = delete;
  MemoryFile& operator=(const MemoryFile&) = delete;
  ~MemoryFile() { ::close(fd_); }

  /// Replaces the content with data[0, size) and returns the path.
  const std::string& write(const uint8_t* data, size_t size) {
    XG_CHECK(::ftruncate(fd_, 0) == 0, "fuzz: ftruncate failed");
    size_t done = 0;
    while (done < size) {
      ssize_t n = ::pwrite(fd_, data + done, size - done, static_cast<off_t>(done));
      XG_CHECK(n > 0, "fuzz: pwrite failed");
      done += static_cast<size_t>(n);
    }
    return path_;
  }

 private:
  int fd_ = -1;
  std::string path_;
};

/// Reads every element, so a tensor whose buffer is smaller than its shape shows up under ASan.
inline double touch(const Tensor& t) {
  if (!t.defined()) return 0.0;
  double sum = 0.0;
  const int64_t n = t.numel();
  switch (t.dtype()) {
    case Dtype::Float32:
      for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(t.data_ptr<float>()[i] != 0.0f);
      break;
    case Dtype::Float64:
      for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(t.data_ptr<double>()[i] != 0.0);
      break;
    case Dtype::Int64:
      for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(t.data_ptr<int64_t>()[i] != 0);
      break;
  }
  return sum;
}

// ---- idx -----------------------------------------------------------------------------------------

/// The idx reader, raw and gzip (read_idx detects gzip by its magic), and both tensor conversions.
inline void run_idx(const uint8_t* data, size_t size) {
  static MemoryFile file;
  try {
    data::IdxArray array = data::read_idx(file.write(data, size));
    touch(array.to_tensor(false));
    touch(array.to_tensor(true));
  } catch (const Error&) {
  }
}

// ---- safetensors and checkpoints -----------------------------------------------------------------

/// The objects a checkpoint is loaded into: a model with float parameters and an int64 buffer, Adam, a
/// scheduler. make_corpus.cpp saves the same objects, so the seeds are files these loaders accept.
struct CheckpointTargets {
  nn::Sequential model;
  std::unique_ptr<optim::Adam> optimizer;
  std::unique_ptr<optim::StepLR> scheduler;
  optim::Checkpoint checkpoint;

  CheckpointTargets() {
    manual_seed(0);
    model = nn::Sequential(nn::Linear(3, 2), nn::BatchNorm1d(2));
    optimizer = std::make_unique<optim::Adam>(model->parameters(), optim::AdamOptions(0.01));
    scheduler = std::make_unique<optim::StepLR>(*optimizer, 2, 0.5);
    checkpoint.add("model", model).add("optimizer", *optimizer).add("scheduler", *scheduler);
  }

  /// One optimizer step, so the optimizer has state to save.
  void train_step() {
    optimizer->zero_grad();
    Tensor loss = model->forward(randn({4, 3})).pow(2.0).mean();
    loss.backward();
    optimizer->step();
    scheduler->step();
  }
};

/// Every reader of safetensors bytes: the raw reader (with metadata), the name -> tensor reader, module
/// loading (strict and not), the optimizer's flat state dict, and the full training checkpoint.
inline void run_safetensors(const uint8_t* data, size_t size) {
  static MemoryFile file;
  static CheckpointTargets targets;
  const std::string& path = file.write(data, size);
  try {
    std::map<std::string, std::string> metadata;
    for (const auto& [name, tensor] : nn::load_safetensors(path, &metadata)) touch(tensor);
  } catch (const Error&) {
  }
  try {
    std::map<std::string, Tensor> flat = nn::load_tensors(path);
    optim::OptimizerStateDict state = optim::OptimizerStateDict::from_tensors(flat);
    targets.optimizer->load_state_dict(state);
  } catch (const Error&) {
  }
  for (bool strict : {true, false}) {
    try {
      nn::load(targets.model, path, strict);
    } catch (const Error&) {
    }
  }
  try {
    optim::CheckpointState state = targets.checkpoint.load(path);
    for (const auto& [name, tensor] : state.tensors) touch(tensor);
    // A loaded checkpoint must leave objects that still work.
    targets.train_step();
  } catch (const Error&) {
  }
}

// ---- CSV -----------------------------------------------------------------------------------------

/// The options come from the first byte, the file from the rest:
/// bit 0 header, bits 1-2 delimiter (, ; tab space), bit 3 float32 targets, bits 4-7 the target column
/// (0-14 -> index 7 - value, i.e. 7 down to -7; 15 -> the column named "y").
inline data::CSVOptions csv_options_from_byte(uint8_t byte) {
  static const char kDelimiters[] = {',', ';', '\t', ' '};
  data::CSVOptions options;
  options.header((byte & 1) != 0).delim(kDelimiters[(byte >> 1) & 3]).target_type((byte & 8) != 0 ? kFloat32 : kInt64);
  const int column = byte >> 4;
  if (column == 15) options.target_column(std::string("y"));
  else options.target_column(static_cast<int64_t>(7 - column));
  return options;
}

inline void run_csv(const uint8_t* data, size_t size) {
  if (size == 0) return;
  static MemoryFile file;
  const data::CSVOptions options = csv_options_from_byte(data[0]);
  try {
    data::CSVDataset dataset(file.write(data + 1, size - 1), options);
    const int64_t n = dataset.size();
    touch(dataset.data());
    touch(dataset.targets());
    touch(dataset.get(0).data);
    touch(dataset.get(n - 1).target);
    touch(dataset.get_batch({0, n - 1}).data);
  } catch (const Error&) {
  }
}

}  // namespace xg::fuzz
