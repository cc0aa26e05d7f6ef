// Training checkpoints (xg::optim::Checkpoint): the documented file layout, round trips of every part,
// a resumed run that is bit-identical to an uninterrupted one, corrupt files, rollback of a partial load,
// and atomic writes.
#include <catch2/catch.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>

#include <xgrad/xgrad.hpp>

#include "test_files.hpp"

using namespace xg;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

using xg::test::read_bytes;
using xg::test::TempDir;
using xg::test::write_bytes;

/// Everything that defines a training run's state: model (with dropout and batch norm), Adam, a scheduler.
struct Run {
  nn::Sequential model;
  std::unique_ptr<optim::Adam> optimizer;
  std::unique_ptr<optim::StepLR> scheduler;
  optim::Checkpoint checkpoint;

  explicit Run(uint64_t init_seed, int64_t hidden = 16) {
    manual_seed(init_seed);
    model = nn::Sequential(nn::Linear(6, hidden), nn::BatchNorm1d(hidden), nn::ReLU(), nn::Dropout(0.3), nn::Linear(hidden, 3));
    optimizer = std::make_unique<optim::Adam>(model->parameters(), optim::AdamOptions(0.01));
    scheduler = std::make_unique<optim::StepLR>(*optimizer, 2, 0.5);
    checkpoint.add("model", model).add("optimizer", *optimizer).add("scheduler", *scheduler);
  }

  /// Steps that draw their batch from the global generator, so the generator state matters twice
  /// (the data and the dropout masks); the scheduler steps every step.
  void train(int steps) {
    model->train();
    for (int s = 0; s < steps; ++s) {
      Tensor x = randn({8, 6});
      Tensor labels = randint(0, 3, {8});
      optimizer->zero_grad();
      Tensor loss = nn::functional::cross_entropy(model(x), labels);
      loss.backward();
      optimizer->step();
      scheduler->step();
    }
  }
};

/// Bitwise equality of two state dicts (same keys, same order, equal values).
bool same_state(const nn::OrderedDict<Tensor>& a, const nn::OrderedDict<Tensor>& b) {
  if (a.keys() != b.keys()) return false;
  for (const auto& [key, tensor] : a)
    if (!equal(tensor, b[key])) return false;
  return true;
}

bool same_tensors(const std::map<std::string, Tensor>& a, const std::map<std::string, Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [key, tensor] : a) {
    auto it = b.find(key);
    if (it == b.end() || !equal(tensor, it->second)) return false;
  }
  return true;
}

/// A deep copy of a module's state (state_dict shares the module's tensors).
nn::OrderedDict<Tensor> snapshot(const nn::Sequential& model) {
  nn::OrderedDict<Tensor> copy;
  for (const auto& [key, tensor] : model->state_dict()) copy.insert(key, tensor.detach().clone());
  return copy;
}

}  // namespace

TEST_CASE("a checkpoint holds model, optimizer, scheduler, caller state and generator in the documented layout",
          "[optim][checkpoint]") {
  TempDir dir("xgrad_checkpoint_test");
  const std::string path = dir.file("run.safetensors");
  Run original(1);
  original.train(5);
  optim::CheckpointState state;
  state.epoch = 7;
  state.scalars = {{"best_loss", 0.25}, {"never", std::numeric_limits<double>::infinity()}};
  state.tensors = {{"history", tensor({1.5, 2.5, 3.5, 4.5}, {2, 2}, kFloat64)}};
  state.text = {{"loader", "12 34 56"}};
  original.checkpoint.save(path, state);
  const std::string rng_at_save = random::get_state();

  SECTION("the file is one safetensors file with the documented names") {
    std::map<std::string, std::string> metadata;
    auto flat = nn::load_tensors(path, &metadata);
    CHECK(metadata.at("format") == "xgrad.checkpoint");
    CHECK(metadata.at("version") == "1");
    CHECK(metadata.at("epoch") == "7");
    CHECK(metadata.at("rng_state") == rng_at_save);
    CHECK(metadata.at("text.loader") == "12 34 56");
    CHECK(metadata.at("crc32") == xg::test::documented_crc32(flat, metadata));
    CHECK(equal(flat.at("model.0.weight"), original.model->named_parameters()["0.weight"]));
    CHECK(equal(flat.at("model.1.running_var"), original.model->named_buffers()["1.running_var"]));
    CHECK(flat.at("model.1.num_batches_tracked").item<int64_t>() == 5);
    CHECK(flat.at("optimizer.state.0.step").item<int64_t>() == 5);
    // StepLR(step 2, gamma 0.5) after 5 steps: lr = 0.01 * 0.5^2.
    CHECK(flat.at("scheduler.last_epoch").item<double>() == 5.0);
    CHECK(flat.at("scheduler.last_lr.0").item<double>() == Approx(0.0025).epsilon(1e-15));
    CHECK(flat.at("optimizer.param_groups.0.lr").item<double>() == Approx(0.0025).epsilon(1e-15));
    CHECK(flat.at("scalars.best_loss").dtype() == kFloat64);
    CHECK(flat.at("scalars.best_loss").item<double>() == 0.25);
    CHECK(flat.at("tensors.history").sizes() == Shape{2, 2});
  }

  SECTION("loading into freshly built objects restores all of them") {
    Run fresh(99);  // different initial weights, no optimizer state, scheduler at epoch 0
    REQUIRE_FALSE(same_state(fresh.model->state_dict(), original.model->state_dict()));
    manual_seed(12345);  // a different generator state, to be overwritten
    optim::CheckpointState loaded = fresh.checkpoint.load(path);

    CHECK(same_state(fresh.model->state_dict(), original.model->state_dict()));
    CHECK(same_tensors(fresh.optimizer->state_dict().to_tensors(), original.optimizer->state_dict().to_tensors()));
    CHECK(fresh.scheduler->state_dict() == original.scheduler->state_dict());
    CHECK(fresh.optimizer->param_groups()[0].lr() == original.optimizer->param_groups()[0].lr());
    CHECK((random::get_state() == rng_at_save));
    CHECK(loaded.epoch == 7);
    CHECK(loaded.scalars == state.scalars);
    CHECK(loaded.text == state.text);
    REQUIRE(loaded.tensors.count("history") == 1);
    CHECK(equal(loaded.tensors["history"], state.tensors["history"]));
  }

  SECTION("without the generator") {
    original.checkpoint.include_rng_state(false);
    original.checkpoint.save(path, state);
    std::map<std::string, std::string> metadata;
    nn::load_tensors(path, &metadata);
    CHECK(metadata.count("rng_state") == 0);
    manual_seed(5);
    const std::string before = random::get_state();
    Run fresh(99);
    manual_seed(5);
    fresh.checkpoint.include_rng_state(false);
    fresh.checkpoint.load(path);
    CHECK((random::get_state() == before));
    // A checkpoint without a generator state cannot restore one.
    fresh.checkpoint.include_rng_state(true);
    CHECK_THROWS_WITH(fresh.checkpoint.load(path), Contains(path) && Contains("rng_state"));
  }
}

TEST_CASE("a resumed run is bit-identical to an uninterrupted one (Adam, StepLR, dropout, random batches)",
          "[optim][checkpoint]") {
  TempDir dir("xgrad_checkpoint_test");
  const std::string path = dir.file("checkpoint.safetensors");
  constexpr int kBefore = 7, kAfter = 6;

  Run uninterrupted(3);
  uninterrupted.train(kBefore + kAfter);

  auto resumed_run = [&](bool include_rng) {
    Run first(3);
    first.checkpoint.include_rng_state(include_rng);
    first.train(kBefore);
    optim::CheckpointState state;
    state.epoch = kBefore;
    first.checkpoint.save(path, state);
    // Everything built again from scratch, as a new process would, with another seed.
    auto second = std::make_unique<Run>(777);
    second->checkpoint.include_rng_state(include_rng);
    CHECK(second->checkpoint.load(path).epoch == kBefore);
    second->train(kAfter);
    return second;
  };

  auto resumed = resumed_run(true);
  CHECK(same_state(resumed->model->state_dict(), uninterrupted.model->state_dict()));
  CHECK(same_tensors(resumed->optimizer->state_dict().to_tensors(), uninterrupted.optimizer->state_dict().to_tensors()));
  CHECK(resumed->scheduler->state_dict() == uninterrupted.scheduler->state_dict());
  CHECK((random::get_state() == [&] {
    Run reference(3);
    reference.train(kBefore + kAfter);
    return random::get_state();
  }()));

  // The test has teeth: without the generator state the continuation draws other batches and masks.
  auto without_rng = resumed_run(false);
  CHECK_FALSE(same_state(without_rng->model->state_dict(), uninterrupted.model->state_dict()));
}

TEST_CASE("a truncated, corrupt or foreign file is an xg::Error and changes nothing", "[optim][checkpoint]") {
  TempDir dir("xgrad_checkpoint_test");
  const std::string path = dir.file("checkpoint.safetensors");
  Run saved(1);
  saved.train(3);
  saved.checkpoint.save(path);
  const std::string bytes = read_bytes(path);

  Run target(2);
  target.train(2);
  const auto model_before = snapshot(target.model);
  const auto optimizer_before = target.optimizer->state_dict().to_tensors();
  const auto scheduler_before = target.scheduler->state_dict();
  manual_seed(31);
  const std::string rng_before = random::get_state();
  auto check_unchanged = [&] {
    CHECK(same_state(target.model->state_dict(), model_before));
    CHECK(same_tensors(target.optimizer->state_dict().to_tensors(), optimizer_before));
    CHECK(target.scheduler->state_dict() == scheduler_before);
    CHECK((random::get_state() == rng_before));  // parenthesised: a failure prints no 5 KB strings
  };

  SECTION("truncated in the data") {
    const std::string broken = dir.file("truncated.safetensors");
    write_bytes(broken, bytes.substr(0, bytes.size() - 100));
    CHECK_THROWS_AS(target.checkpoint.load(broken), Error);
    CHECK_THROWS_WITH(target.checkpoint.load(broken), Contains(broken));
    check_unchanged();
  }
  SECTION("truncated in the header") {
    const std::string broken = dir.file("truncated.safetensors");
    write_bytes(broken, bytes.substr(0, 40));
    CHECK_THROWS_WITH(target.checkpoint.load(broken), Contains(broken));
    check_unchanged();
  }
  SECTION("a corrupt header byte") {
    std::string corrupt = bytes;
    corrupt[9] = '\x01';  // inside the JSON
    const std::string broken = dir.file("corrupt.safetensors");
    write_bytes(broken, corrupt);
    CHECK_THROWS_WITH(target.checkpoint.load(broken), Contains(broken));
    check_unchanged();
  }
  SECTION("an empty file and a missing file") {
    const std::string empty = dir.file("empty.safetensors");
    write_bytes(empty, "");
    CHECK_THROWS_WITH(target.checkpoint.load(empty), Contains(empty));
    CHECK_THROWS_WITH(target.checkpoint.load(dir.file("missing.safetensors")), Contains("missing.safetensors"));
    check_unchanged();
  }
  SECTION("a plain model file is not a checkpoint") {
    const std::string plain = dir.file("model.safetensors");
    nn::save(saved.model, plain);
    CHECK_THROWS_WITH(target.checkpoint.load(plain), Contains(plain) && Contains("not an xgrad checkpoint"));
    check_unchanged();
  }
  SECTION("malformed metadata: epoch, version, generator state") {
    auto flat = nn::load_tensors(path);
    std::map<std::string, std::string> metadata;
    nn::load_tensors(path, &metadata);
    const std::string broken = dir.file("metadata.safetensors");
    for (const auto& [key, value, message] : std::vector<std::tuple<std::string, std::string, std::string>>{
             {"epoch", "-3", "epoch '-3'"}, {"epoch", "7x", "epoch '7x'"}, {"version", "2", "version '2'"},
             {"rng_state", "1 2 3", "not a valid generator state"}}) {
      auto changed = metadata;
      changed[key] = value;
      changed["crc32"] = xg::test::documented_crc32(flat, changed);  // a consistent file, so the value itself is what fails
      nn::save_tensors(flat, broken, changed);
      CHECK_THROWS_WITH(target.checkpoint.load(broken), Contains(broken) && Contains(message));
    }
    check_unchanged();
  }
  SECTION("a flipped bit in the tensor data or in the metadata fails the checksum") {
    uint64_t header_length = 0;
    for (int i = 7; i >= 0; --i) header_length = (header_length << 8) | static_cast<unsigned char>(bytes[i]);
    const size_t data_start = 8 + header_length;
    REQUIRE(data_start < bytes.size());
    for (size_t position : {bytes.size() - 3, data_start + (bytes.size() - data_start) / 2, data_start}) {
      std::string corrupt = bytes;
      corrupt[position] ^= 0x10;
      const std::string broken = dir.file("bitflip.safetensors");
      write_bytes(broken, corrupt);
      CHECK_THROWS_WITH(target.checkpoint.load(broken), Contains(broken) && Contains("checksum does not match"));
    }
    std::map<std::string, std::string> metadata;
    nn::load_tensors(path, &metadata);
    // Edits of the file's own bytes (a writer would compute a fresh checksum): a plausible epoch that is
    // not the one the checksum covers, then the checksum's key renamed away.
    const std::string edited = dir.file("edited.safetensors");
    const size_t epoch_at = bytes.find(R"("epoch":")" + metadata.at("epoch") + "\"");
    REQUIRE(epoch_at != std::string::npos);
    std::string other_epoch = bytes;
    other_epoch[epoch_at + 9] = other_epoch[epoch_at + 9] == '4' ? '5' : '4';
    write_bytes(edited, other_epoch);
    CHECK_THROWS_WITH(target.checkpoint.load(edited), Contains(edited) && Contains("checksum does not match"));
    const size_t key_at = bytes.find(R"("crc32":)");
    REQUIRE(key_at != std::string::npos);
    std::string no_checksum = bytes;
    no_checksum[key_at + 5] = '3';  // "crc33": a file without the checksum, which a checkpoint must have
    write_bytes(edited, no_checksum);
    CHECK_THROWS_WITH(target.checkpoint.load(edited), Contains(edited) && Contains("crc32"));
    check_unchanged();
  }
  SECTION("an entry for an object this checkpoint does not have") {
    auto flat = nn::load_tensors(path);
    std::map<std::string, std::string> metadata;
    nn::load_tensors(path, &metadata);
    flat["ema.weight"] = zeros({2});
    metadata["crc32"] = xg::test::documented_crc32(flat, metadata);
    const std::string extra = dir.file("extra.safetensors");
    nn::save_tensors(flat, extra, metadata);
    CHECK_THROWS_WITH(target.checkpoint.load(extra), Contains("'ema.weight'") && Contains("not added"));
    check_unchanged();
  }
  SECTION("a model of another shape") {
    Run wider(4, /*hidden=*/20);
    wider.train(1);
    const std::string other = dir.file("wider.safetensors");
    wider.checkpoint.save(other);
    manual_seed(31);  // building and training `wider` drew from the generator: back to the state under test
    CHECK_THROWS_WITH(target.checkpoint.load(other), Contains(other) && Contains("'model' does not match"));
    check_unchanged();
  }
  SECTION("the model matches but the optimizer does not: the model is rolled back") {
    // The same architecture, but an optimizer over the first layer only: the model part loads,
    // the optimizer part is refused, and the model must come back to its state before the load.
    optim::Adam partial(target.model->ptr<nn::LinearImpl>(0)->parameters(), optim::AdamOptions(0.01));
    optim::Checkpoint checkpoint;
    checkpoint.add("model", target.model).add("optimizer", partial).add("scheduler", *target.scheduler);
    CHECK_THROWS_WITH(checkpoint.load(path), Contains(path) && Contains("'optimizer' does not match"));
    CHECK(same_state(target.model->state_dict(), model_before));
    CHECK_FALSE(partial.has_state(partial.parameters()[0]));
    check_unchanged();
  }
}

TEST_CASE("Checkpoint::add rejects names that would collide", "[optim][checkpoint]") {
  Run run(1);
  optim::Checkpoint checkpoint;
  checkpoint.add("model", run.model);
  CHECK_THROWS_WITH(checkpoint.add("model", *run.optimizer), Contains("'model' is already taken"));
  CHECK_THROWS_WITH(checkpoint.add("a.b", *run.optimizer), Contains("cannot contain '.'"));
  CHECK_THROWS_WITH(checkpoint.add("scalars", *run.optimizer), Contains("reserved"));
  CHECK_THROWS_WITH(checkpoint.add("", *run.optimizer), Contains("empty"));
}

TEST_CASE("a failed checkpoint write keeps the previous checkpoint", "[optim][checkpoint]") {
  TempDir dir("xgrad_checkpoint_test");
  const std::string path = dir.file("checkpoint.safetensors");
  Run small(1);
  small.train(2);
  optim::CheckpointState state;
  state.epoch = 2;
  small.checkpoint.save(path, state);
  const std::string previous = read_bytes(path);

  // A model big enough that a 64 KiB file-size limit stops write() (EFBIG) partway through its data.
  Run big(2, /*hidden=*/4096);
  big.train(1);
  struct FileSizeLimit {
    rlimit saved{};
    void (*saved_handler)(int);
    explicit FileSizeLimit(rlim_t bytes) {
      saved_handler = std::signal(SIGXFSZ, SIG_IGN);
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
  bool threw = false;
  {
    FileSizeLimit limit(64 * 1024);
    try {
      state.epoch = 3;
      big.checkpoint.save(path, state);
    } catch (const Error& error) {
      threw = true;
      CHECK_THAT(std::string(error.what()), Contains(path));
    }
  }
  CHECK(threw);
  CHECK(read_bytes(path) == previous);
  CHECK(dir.temp_files().empty());
  Run reload(5);
  CHECK(reload.checkpoint.load(path).epoch == 2);
  CHECK(same_state(reload.model->state_dict(), small.model->state_dict()));
}
