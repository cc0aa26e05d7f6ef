// Checkpoints survive interrupted writes. A child process writes a new checkpoint over an existing one and
// is killed by the kernel at an exact byte (RLIMIT_FSIZE with SIGXFSZ's default action, i.e. a crash, not
// an error the code could handle): for every tested length the previous checkpoint is intact and loads,
// the partial temporary file is rejected as truncated, and a run resumed from the surviving checkpoint ends
// bit-identical to an uninterrupted run. In-process write failures at random lengths raise an error and
// leave no temporary file; truncations at every boundary and all through the file are errors that change nothing.
#include <catch2/catch.hpp>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <set>

#include <xgrad/xgrad.hpp>

#include "test_files.hpp"

using namespace xg;
namespace fs = std::filesystem;
using Catch::Matchers::Contains;

namespace {

using xg::test::read_bytes;
using xg::test::TempDir;
using xg::test::write_bytes;

/// The raw bytes of every tensor of a state dict, in order: equal strings mean bit-identical states.
std::string state_bytes(const nn::OrderedDict<Tensor>& state) {
  std::string bytes;
  for (const auto& [name, tensor] : state) {
    bytes += name;
    Tensor t = tensor.contiguous();
    const char* data = t.dtype() == kFloat32   ? reinterpret_cast<const char*>(t.data_ptr<float>())
                       : t.dtype() == kFloat64 ? reinterpret_cast<const char*>(t.data_ptr<double>())
                                               : reinterpret_cast<const char*>(t.data_ptr<int64_t>());
    bytes.append(data, static_cast<size_t>(t.numel()) * (t.dtype() == kFloat32 ? 4 : 8));
  }
  return bytes;
}

std::string optimizer_bytes(const optim::Optimizer& optimizer) {
  nn::OrderedDict<Tensor> flat;
  for (const auto& [key, tensor] : optimizer.state_dict().to_tensors()) flat.insert(key, tensor);
  return state_bytes(flat);
}

/// A training run: a small CNN with batch norm and dropout, Adam, a step schedule, a shuffling loader
/// with a random augmentation, all registered with one Checkpoint. Epochs are the unit of resumption.
struct Run {
  std::shared_ptr<data::TensorDataset> dataset;
  std::unique_ptr<data::DataLoader> loader;
  nn::Sequential model;
  std::unique_ptr<optim::Adam> optimizer;
  std::unique_ptr<optim::StepLR> scheduler;
  optim::Checkpoint checkpoint;
  int64_t epoch = 0;

  explicit Run(uint64_t seed) {
    manual_seed(seed);
    // The data are the same whatever the seed (their own generator state), so only the run's randomness varies.
    {
      const std::string state = random::get_state();
      manual_seed(1234);
      dataset = std::make_shared<data::TensorDataset>(randn({24, 1, 6, 6}), randint(0, 3, {24}));
      random::set_state(state);
    }
    loader = std::make_unique<data::DataLoader>(dataset, data::DataLoaderOptions(8).shuffle(true), data::transforms::RandomHorizontalFlip(0.5));
    model = nn::Sequential(nn::Conv2d(nn::Conv2dOptions(1, 3, 3).padding(1)), nn::BatchNorm2d(3), nn::ReLU(), nn::Dropout(0.2),
                           nn::Flatten(), nn::Linear(3 * 6 * 6, 3));
    optimizer = std::make_unique<optim::Adam>(model->parameters(), optim::AdamOptions(0.01));
    scheduler = std::make_unique<optim::StepLR>(*optimizer, 2, 0.5);
    checkpoint.add("model", model).add("optimizer", *optimizer).add("scheduler", *scheduler);
  }

  void train_epochs(int64_t epochs) {
    model->train();
    for (int64_t e = 0; e < epochs; ++e, ++epoch) {
      for (const data::Example<>& batch : *loader) {
        optimizer->zero_grad();
        Tensor loss = nn::functional::cross_entropy(model->forward(batch.data), batch.target);
        loss.backward();
        optimizer->step();
      }
      scheduler->step();
    }
  }

  void save(const std::string& path) const {
    optim::CheckpointState state;
    state.epoch = epoch;
    state.text["loader"] = loader->generator_state();
    checkpoint.save(path, state);
  }

  void load(const std::string& path) {
    optim::CheckpointState state = checkpoint.load(path);
    epoch = state.epoch;
    loader->set_generator_state(state.text.at("loader"));
  }

  std::string fingerprint() const { return state_bytes(model->state_dict()) + optimizer_bytes(*optimizer) + random::get_state(); }
};

/// Runs run.save(path) in a child process whose writes stop at `bytes` (the kernel kills it with SIGXFSZ
/// at the first write past the limit, as a crash or power loss would stop it). Returns the wait status.
int save_in_child_killed_after(const Run& run, const std::string& path, rlim_t bytes) {
  std::fflush(nullptr);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    rlimit no_core{0, 0};
    ::setrlimit(RLIMIT_CORE, &no_core);
    std::signal(SIGXFSZ, SIG_DFL);
    rlimit limit{bytes, bytes};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    try {
      run.save(path);
    } catch (...) {
      ::_exit(3);
    }
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  return status;
}

/// The lengths to interrupt a write of `size` bytes at: the edges of the header-length field and of the
/// file, and random lengths in between (fixed seed: the same lengths every run).
std::vector<rlim_t> interruption_points(size_t size, int random_count, uint64_t seed) {
  std::set<rlim_t> points = {0, 1, 7, 8, 9, 64, static_cast<rlim_t>(size / 2), static_cast<rlim_t>(size - 1)};
  std::mt19937_64 generator(seed);
  while (static_cast<int>(points.size()) < random_count + 8) points.insert(static_cast<rlim_t>(generator() % size));
  return std::vector<rlim_t>(points.begin(), points.end());
}

}  // namespace

TEST_CASE("checkpoint: a write killed at any byte leaves the previous checkpoint intact and loadable", "[reliability][checkpoint]") {
  TempDir dir("xgrad_reliability_checkpoint");
  const std::string path = dir.file("checkpoint.safetensors");
  Run run(7);
  run.train_epochs(1);
  run.save(path);
  const std::string previous = read_bytes(path);
  const std::string previous_fingerprint = run.fingerprint();

  run.train_epochs(1);  // the new state differs from the saved one
  const std::string next_path = dir.file("next.safetensors");
  run.save(next_path);
  const size_t next_size = read_bytes(next_path).size();
  REQUIRE(next_size > 1000);

  for (rlim_t length : interruption_points(next_size, 24, 42)) {
    INFO("write killed after " << length << " of " << next_size << " bytes");
    const int status = save_in_child_killed_after(run, path, length);
    REQUIRE(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGXFSZ);
    // The target is the previous checkpoint, byte for byte, and loads into fresh objects.
    CHECK((read_bytes(path) == previous));
    Run resumed(99);
    resumed.load(path);
    CHECK(resumed.epoch == 1);
    CHECK((resumed.fingerprint() == previous_fingerprint));
    // The crash left its temporary file, cut at exactly `length` bytes; loading it is an error.
    const auto leftovers = dir.temp_files();
    REQUIRE(leftovers.size() == 1);
    CHECK(fs::file_size(leftovers[0]) == length);
    Run victim(5);
    const std::string victim_before = victim.fingerprint();
    CHECK_THROWS_AS(victim.load(leftovers[0]), Error);
    CHECK_THROWS_WITH(victim.load(leftovers[0]), Contains(leftovers[0]));
    CHECK((victim.fingerprint() == victim_before));
    fs::remove(leftovers[0]);
  }
  // With no limit the same child process replaces the checkpoint (so the kills above were the cause).
  run.save(next_path);  // the Runs built above moved the global generator: save the expected bytes again
  const int status = save_in_child_killed_after(run, path, RLIM_INFINITY);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK((read_bytes(path) == read_bytes(next_path)));
  CHECK(dir.temp_files().empty());
}

TEST_CASE("checkpoint: a run resumed after an interrupted save is bit-identical to an uninterrupted run", "[reliability][checkpoint]") {
  TempDir dir("xgrad_reliability_checkpoint");
  const std::string path = dir.file("checkpoint.safetensors");
  Run uninterrupted(11);
  uninterrupted.train_epochs(4);

  Run first(11);
  first.train_epochs(2);
  first.save(path);      // epoch 2: a good checkpoint
  first.train_epochs(1);
  const std::string next_path = dir.file("next.safetensors");
  first.save(next_path);
  const rlim_t cut = static_cast<rlim_t>(read_bytes(next_path).size() / 3);
  REQUIRE(WIFSIGNALED(save_in_child_killed_after(first, path, cut)));  // epoch 3: the save crashes

  Run resumed(12345);  // a new process: everything rebuilt, with another seed
  resumed.load(path);
  REQUIRE(resumed.epoch == 2);
  resumed.train_epochs(2);
  CHECK((resumed.fingerprint() == uninterrupted.fingerprint()));
  // The check has teeth: resuming without restoring the loader's shuffle state diverges.
  Run careless(12345);
  careless.checkpoint.load(path);
  careless.epoch = 2;
  careless.train_epochs(2);
  CHECK((careless.fingerprint() != uninterrupted.fingerprint()));
}

TEST_CASE("checkpoint: a write that fails at any length raises xg::Error, keeps the previous file, leaves no temporary file",
          "[reliability][checkpoint]") {
  TempDir dir("xgrad_reliability_checkpoint");
  const std::string path = dir.file("checkpoint.safetensors");
  Run run(3);
  run.train_epochs(1);
  run.save(path);
  const std::string previous = read_bytes(path);
  run.train_epochs(1);
  const std::string next_path = dir.file("next.safetensors");
  run.save(next_path);
  const size_t next_size = read_bytes(next_path).size();

  struct FileSizeLimit {
    rlimit saved{};
    void (*saved_handler)(int);
    explicit FileSizeLimit(rlim_t bytes) {
      saved_handler = std::signal(SIGXFSZ, SIG_IGN);  // write() then fails with EFBIG instead of killing us
      REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved) == 0);
      rlimit lowered = saved;
      lowered.rlim_cur = bytes;
      REQUIRE(::setrlimit(RLIMIT_FSIZE, &lowered) == 0);
    }
    ~FileSizeLimit() {
      ::setrlimit(RLIMIT_FSIZE, &saved);
      std::signal(SIGXFSZ, saved_handler);
    }
  };
  for (rlim_t length : interruption_points(next_size, 16, 7)) {
    INFO("writes fail after " << length << " of " << next_size << " bytes");
    std::string message;
    {
      FileSizeLimit limit(length);
      try {
        run.save(path);
      } catch (const Error& error) {
        message = error.what();
      }
    }
    CHECK_THAT(message, Contains(path) && Contains("cannot write"));
    CHECK((read_bytes(path) == previous));
    CHECK(dir.temp_files().empty());
  }
}

TEST_CASE("checkpoint: every truncation of a checkpoint file is an xg::Error and changes nothing", "[reliability][checkpoint]") {
  TempDir dir("xgrad_reliability_checkpoint");
  const std::string path = dir.file("checkpoint.safetensors");
  Run saved(1);
  saved.train_epochs(1);
  saved.save(path);
  const std::string bytes = read_bytes(path);

  Run target(2);
  const std::string before = target.fingerprint();
  const std::string truncated = dir.file("truncated.safetensors");
  // Every length near the three boundaries (the 8-byte header length, the end of the JSON header, the
  // end of the file) and every 37th length elsewhere: ~600 truncations instead of all ~11,000.
  uint64_t header_length = 0;
  for (int i = 7; i >= 0; --i) header_length = (header_length << 8) | static_cast<unsigned char>(bytes[i]);
  const size_t header_end = 8 + header_length;
  REQUIRE(header_end < bytes.size());
  std::set<size_t> lengths;
  for (size_t length = 0; length < bytes.size(); length += 37) lengths.insert(length);
  for (size_t offset = 0; offset < 64; ++offset) {
    lengths.insert(offset);
    lengths.insert(bytes.size() - 1 - offset);
    if (header_end + offset >= 32 && header_end + offset - 32 < bytes.size()) lengths.insert(header_end + offset - 32);
  }
  int errors = 0;
  for (size_t length : lengths) {
    write_bytes(truncated, bytes.substr(0, length));
    try {
      target.load(truncated);
    } catch (const Error&) {
      ++errors;
    }
  }
  CHECK(errors == static_cast<int>(lengths.size()));
  CHECK((target.fingerprint() == before));
  // The whole file loads (the truncations were what failed).
  target.load(path);
  CHECK((target.fingerprint() == saved.fingerprint()));
}

TEST_CASE("checkpoint: a flipped bit anywhere in a checkpoint is detected and changes nothing", "[reliability][checkpoint]") {
  // safetensors itself has no checksum; the checkpoint's "crc32" metadata is what catches corruption
  // inside the tensor data, which the header validation cannot see.
  TempDir dir("xgrad_reliability_checkpoint");
  const std::string path = dir.file("checkpoint.safetensors");
  Run saved(1);
  saved.train_epochs(1);
  saved.save(path);
  const std::string bytes = read_bytes(path);
  Run target(2);
  const std::string before = target.fingerprint();
  const std::string corrupt_path = dir.file("corrupt.safetensors");
  std::mt19937_64 generator(5);
  for (int trial = 0; trial < 40; ++trial) {
    // Half the flips in the last 512 bytes (tensor data), half anywhere.
    const size_t at = trial % 2 == 0 ? bytes.size() - 1 - generator() % 512 : generator() % bytes.size();
    std::string corrupt = bytes;
    corrupt[at] = static_cast<char>(corrupt[at] ^ (1 << (generator() % 8)));
    write_bytes(corrupt_path, corrupt);
    INFO("bit flipped in byte " << at << " of " << bytes.size());
    CHECK_THROWS_AS(target.load(corrupt_path), Error);
  }
  CHECK((target.fingerprint() == before));
}
