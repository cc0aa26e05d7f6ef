// libtorch's data API in xg::data: Example, datasets (Dataset, BatchDataset, StreamDataset, MapDataset,
// TensorDataset), transforms (Lambda, BatchLambda, TensorLambda, Collate, Stack, Normalize, random
// augmentations), samplers, make_data_loader with workers. Expected values come from the definitions
// (index arithmetic, the Normalize formula), not from earlier runs.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <stdexcept>
#include <thread>

#include <xgrad/xgrad.hpp>

using namespace xg;
using Catch::Matchers::Contains;
namespace datasets = xg::data::datasets;
namespace samplers = xg::data::samplers;
namespace transforms = xg::data::transforms;

namespace {
/// Example i is {[i, i], i}: the data says which example it is.
struct Numbers : datasets::Dataset<Numbers> {
  explicit Numbers(size_t n) : n(n) {}
  data::Example<> get(size_t index) override {
    XG_CHECK(index < n, "Numbers: index {} of {}", index, n);
    return {full({2}, static_cast<double>(index)), full({}, static_cast<double>(index), kInt64)};
  }
  std::optional<size_t> size() const override { return n; }
  size_t n;
};

std::vector<int64_t> targets_of(const data::Example<>& batch) {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < batch.target.numel(); ++i) out.push_back(batch.target.contiguous_data<int64_t>()[i]);
  return out;
}

template <class Loader>
std::vector<std::vector<int64_t>> epoch_targets(Loader& loader) {
  std::vector<std::vector<int64_t>> batches;
  for (auto& batch : loader) batches.push_back(targets_of(batch));
  return batches;
}

std::vector<size_t> drain(samplers::Sampler<>& sampler, size_t batch_size, std::vector<size_t>* sizes = nullptr) {
  std::vector<size_t> all;
  while (auto batch = sampler.next(batch_size)) {
    if (sizes) sizes->push_back(batch->size());
    all.insert(all.end(), batch->begin(), batch->end());
  }
  return all;
}
}  // namespace

TEST_CASE("Example, TensorExample and datasets::TensorDataset", "[data][api]") {
  data::Example<> e(ones({2}), zeros({}, kInt64));
  CHECK(e.data.numel() == 2);
  data::Example<std::string, int> custom("a", 1);
  CHECK(custom.target == 1);
  data::TensorExample t(arange(3));
  const Tensor& as_tensor = t;
  CHECK(as_tensor.numel() == 3);

  datasets::TensorDataset ds(arange(0, 12, 1, kFloat64).reshape({4, 3}));
  REQUIRE(ds.size().value() == 4);
  CHECK(ds.get(2).data.contiguous().contiguous_data<double>()[0] == 6.0);
  std::vector<data::TensorExample> batch = ds.get_batch({3, 1});
  REQUIRE(batch.size() == 2);
  CHECK(batch[0].data.contiguous().contiguous_data<double>()[2] == 11.0);
  CHECK(batch[1].data.contiguous().contiguous_data<double>()[0] == 3.0);
  CHECK_THROWS_WITH(ds.get(4), Contains("TensorDataset::get") && Contains("index 4") && Contains("4 examples"));
  CHECK_THROWS_AS(datasets::TensorDataset(Tensor()), Error);
  datasets::TensorDataset stacked(std::vector<Tensor>{zeros({2}), ones({2})});
  CHECK(stacked.size().value() == 2);

  auto collated = transforms::Stack<data::TensorExample>().apply_batch(ds.get_batch({0, 1}));
  CHECK(collated.data.shape() == Shape{2, 3});
}

TEST_CASE("map applies transforms in order: Normalize per example, then Stack", "[data][api][transforms]") {
  Numbers numbers(5);
  auto mapped = numbers.map(transforms::Lambda<data::Example<>>([](data::Example<> e) {
    e.data = e.data * 10.0;
    return e;
  }));
  CHECK(mapped.size().value() == 5);
  auto stacked = std::move(mapped).map(transforms::Stack<>());
  data::Example<> batch = stacked.get_batch({4, 0, 2});
  CHECK(batch.data.shape() == Shape{3, 2});
  CHECK(targets_of(batch) == std::vector<int64_t>{4, 0, 2});
  CHECK(batch.data.contiguous_data<float>()[0] == 40.0f);
  CHECK(batch.data.contiguous_data<float>()[5] == 20.0f);

  // BatchLambda and Collate see the whole batch.
  auto counted = Numbers(3).map(transforms::BatchLambda<std::vector<data::Example<>>, size_t>(
      [](std::vector<data::Example<>> b) { return b.size(); }));
  CHECK(counted.get_batch({0, 1, 2}) == 3u);
  auto first = Numbers(3).map(transforms::Collate<>([](std::vector<data::Example<>> b) { return b.front(); }));
  CHECK(first.get_batch({2, 1}).target.item<int64_t>() == 2);
  auto doubled = Numbers(3).map(transforms::TensorLambda<>([](Tensor x) { return x * 2.0; })).map(transforms::Stack<>());
  CHECK(doubled.get_batch({1}).data.contiguous_data<float>()[0] == 2.0f);
  CHECK_THROWS_WITH(transforms::Stack<>().apply_batch({}), Contains("Stack") && Contains("at least one"));
  CHECK_THROWS_AS(transforms::Lambda<int>(nullptr), Error);
}

TEST_CASE("Normalize: (x - mean) / stddev over [C, 1, 1], broadcast as libtorch's", "[data][api][transforms]") {
  // float32 data: the float32 constants, subtract then divide, in float32.
  Tensor x = rand({3, 4, 5});
  transforms::Normalize<> per_channel({0.1, 0.2, 0.3}, {0.5, 0.25, 2.0});
  CHECK(per_channel.mean.shape() == Shape{3, 1, 1});
  CHECK(per_channel.stddev.dtype() == kFloat32);
  Tensor y = per_channel(x);
  REQUIRE(y.shape() == x.shape());
  const float means[] = {0.1f, 0.2f, 0.3f}, stds[] = {0.5f, 0.25f, 2.0f};
  for (int64_t i = 0; i < x.numel(); ++i) {
    const int64_t c = i / 20;
    CHECK(y.contiguous_data<float>()[i] == (x.contiguous_data<float>()[i] - means[c]) / stds[c]);
  }
  // A batch [N, C, H, W] normalises each image the same way; a non-contiguous input gives the same values.
  Tensor batch = stack({x, x});
  CHECK(equal(per_channel(batch)[1], y));
  Tensor wide = rand({5, 4, 3}).permute({2, 1, 0});
  REQUIRE(!wide.is_contiguous());
  CHECK(allclose(per_channel(wide), per_channel(wide.contiguous()), 0, 0));

  // float64 data: libtorch's float32 constants promoted to float64 (0.1307 is rounded to float32 first).
  transforms::Normalize<> mnist(0.1307, 0.3081);
  Tensor d = full({1, 2, 2}, 0.5, kFloat64);
  CHECK(mnist(d).contiguous_data<double>()[3] == (0.5 - double(0.1307f)) / double(0.3081f));
  // One value and [H, W] data: broadcasting [1, 1, 1] makes it [1, H, W], as in libtorch.
  CHECK(mnist(zeros({28, 28})).shape() == Shape{1, 28, 28});
  // libtorch would broadcast one channel to three; here that is an error.
  CHECK_THROWS_WITH(per_channel(zeros({1, 2, 2})), Contains("Normalize") && Contains("1 channel(s)") && Contains("C = 3"));

  CHECK_THROWS_WITH(per_channel(zeros({2, 4, 4})), Contains("Normalize") && Contains("C = 3") && Contains("[2, 4, 4]"));
  CHECK_THROWS_WITH(per_channel(zeros({4, 4})), Contains("Normalize") && Contains("[..., C, H, W]"));
  CHECK_THROWS_WITH(mnist(zeros({1, 2, 2}, kInt64)), Contains("Normalize") && Contains("float"));
  CHECK_THROWS_WITH(transforms::Normalize<>({0.5, 0.5}, {0.5}), Contains("same non-zero length"));
  CHECK_THROWS_WITH(transforms::Normalize<>(0.5, 0.0), Contains("positive"));
  CHECK_THROWS_WITH(transforms::Normalize<>(0.5, 1e300), Contains("float32"));

  // Differentiable when the input requires grad: the Jacobian is diag(1 / stddev[c]).
  transforms::Normalize<> f64({0.5, -1.0}, {2.0, 0.5});
  Tensor in = rand({2, 2, 3}, kFloat64).requires_grad_(true);
  CHECK(autograd::gradcheck([&](const TensorList& v) { return f64(v[0]); }, {in}));
  Tensor strided = rand({3, 2, 2}, kFloat64).permute({1, 2, 0}).requires_grad_(true);  // [2, 2, 3], non-contiguous
  CHECK(autograd::gradcheck([&](const TensorList& v) { return f64(v[0]); }, {strided}));
  // As a map() stage it leaves the target alone.
  auto normalized = Numbers(2).map(transforms::Normalize<>(1.0, 2.0)).map(transforms::Stack<>());
  data::Example<> b = normalized.get_batch({1});
  CHECK(b.target.item<int64_t>() == 1);
}

TEST_CASE("random augmentations as map() stages draw from the batch generator", "[data][api][transforms]") {
  Tensor image = zeros({1, 3, 3});
  image.contiguous_data<float>()[2] = 1.0f;  // top-right pixel
  transforms::RandomHorizontalFlip always(1.0);
  Tensor flipped = always(image);
  CHECK(flipped.shape() == Shape{1, 3, 3});
  CHECK(flipped.contiguous_data<float>()[0] == 1.0f);
  transforms::RandomTranslate none(0);
  CHECK(equal(none(image), image));
  // The same batch seed gives the same shifts.
  Tensor src = rand({2, 1, 5, 5});
  Tensor r1, r2;
  {
    data::detail::BatchGeneratorScope scope(11);
    r1 = transforms::RandomTranslate(2)(src);
  }
  {
    data::detail::BatchGeneratorScope scope(11);
    r2 = transforms::RandomTranslate(2)(src);
  }
  CHECK(equal(r1, r2));
  // ... and other seeds other shifts (25 shifts per image: ten seeds all giving r1's are ~1e-28 likely).
  bool any_other = false;
  for (uint64_t seed = 12; seed < 22; ++seed) {
    data::detail::BatchGeneratorScope scope(seed);
    any_other = any_other || !equal(transforms::RandomTranslate(2)(src), r1);
  }
  CHECK(any_other);
  CHECK_THROWS_WITH(transforms::RandomTranslate(1)(zeros({3, 3})), Contains("[C, H, W]"));
}

TEST_CASE("SequentialSampler and RandomSampler", "[data][api][samplers]") {
  samplers::SequentialSampler seq(7);
  seq.reset(std::nullopt);
  std::vector<size_t> sizes;
  CHECK(drain(seq, 3, &sizes) == std::vector<size_t>{0, 1, 2, 3, 4, 5, 6});
  CHECK(sizes == std::vector<size_t>{3, 3, 1});
  CHECK(!seq.next(3));
  seq.reset(4);
  CHECK(drain(seq, 10) == std::vector<size_t>{0, 1, 2, 3});
  CHECK_THROWS_WITH(seq.next(0), Contains("batch_size must be positive"));

  manual_seed(3);
  samplers::RandomSampler random(50);
  random.reset();
  std::vector<size_t> order = drain(random, 8);
  std::vector<size_t> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  std::vector<size_t> expected(50);
  std::iota(expected.begin(), expected.end(), size_t{0});
  CHECK(sorted == expected);  // a permutation
  CHECK(order != expected);
  CHECK(random.index() == 50);
  random.reset();
  CHECK(drain(random, 8) != order);  // a new permutation each epoch
  manual_seed(3);
  samplers::RandomSampler again(50);
  again.reset();
  CHECK(drain(again, 8) == order);  // reproducible from the seed
  CHECK_THROWS_WITH(samplers::RandomSampler(-1), Contains("non-negative"));
  CHECK_THROWS_WITH(samplers::RandomSampler(3, kFloat32), Contains("integer"));
}

TEST_CASE("distributed samplers partition the dataset among ranks", "[data][api][samplers]") {
  for (bool allow_duplicates : {true, false}) {
    for (size_t n : {10u, 12u, 2u}) {
      const size_t replicas = 4;
      const size_t local = allow_duplicates ? (n + replicas - 1) / replicas : n / replicas;
      std::multiset<size_t> seen_random, seen_sequential;
      std::vector<std::vector<size_t>> sequential_shares;
      for (size_t rank = 0; rank < replicas; ++rank) {
        samplers::DistributedRandomSampler random(n, replicas, rank, allow_duplicates);
        random.set_epoch(5);
        random.reset();
        std::vector<size_t> mine = drain(random, 3);
        CHECK(mine.size() == local);
        seen_random.insert(mine.begin(), mine.end());
        samplers::DistributedSequentialSampler sequential(n, replicas, rank, allow_duplicates);
        sequential.reset();
        std::vector<size_t> share = drain(sequential, 2);
        CHECK(share.size() == local);
        // Rank r's contiguous share is [r * local, (r + 1) * local), wrapping past the end.
        for (size_t i = 0; i < share.size(); ++i) CHECK(share[i] == (rank * local + i) % n);
        seen_sequential.insert(share.begin(), share.end());
      }
      CHECK(seen_random.size() == local * replicas);
      if (allow_duplicates) {
        // Every example is visited; the padding repeats the fewest possible.
        for (size_t i = 0; i < n; ++i) CHECK(seen_random.count(i) >= 1);
        for (size_t i = 0; i < n; ++i) CHECK(seen_sequential.count(i) >= 1);
      } else {
        for (size_t i : seen_random) CHECK(seen_random.count(i) == 1);  // no duplicates
      }
    }
  }
  // Every rank draws the same permutation for an epoch, another for the next epoch.
  samplers::DistributedRandomSampler a(100, 2, 0), b(100, 2, 1);
  a.reset();
  b.reset();
  std::vector<size_t> a0 = drain(a, 7), b0 = drain(b, 7);
  std::set<size_t> both(a0.begin(), a0.end());
  both.insert(b0.begin(), b0.end());
  CHECK(both.size() == 100);
  a.set_epoch(1);
  a.reset();
  CHECK(drain(a, 7) != a0);
  CHECK(a.epoch() == 1);
  CHECK_THROWS_WITH(samplers::DistributedRandomSampler(10, 2, 2), Contains("rank must be in [0, num_replicas = 2)") && Contains("got 2"));
  CHECK_THROWS_WITH(samplers::DistributedSequentialSampler(10, 0, 0), Contains("num_replicas must be at least 1"));
}

namespace {
/// A stream of consecutive integers: get_batch(n) returns the next n.
struct Counter : datasets::StreamDataset<Counter, std::vector<int64_t>> {
  std::vector<int64_t> get_batch(size_t n) override {
    std::vector<int64_t> out(n);
    for (int64_t& v : out) v = next++;
    return out;
  }
  std::optional<size_t> size() const override { return std::nullopt; }
  int64_t next = 0;
};
}  // namespace

TEST_CASE("StreamSampler and a StreamDataset", "[data][api][samplers]") {
  auto loader = data::make_data_loader(Counter(), samplers::StreamSampler(10), data::DataLoaderOptions(4));
  std::vector<size_t> sizes;
  int64_t expected = 0;
  for (auto& batch : *loader) {
    sizes.push_back(batch.size());
    for (int64_t v : batch) CHECK(v == expected++);
  }
  CHECK(sizes == std::vector<size_t>{4, 4, 2});
  CHECK_THROWS_WITH(data::make_data_loader(Counter(), 4), Contains("no size") && Contains("StreamSampler"));
}

TEST_CASE("make_data_loader: batches, epochs, drop_last, workers keep the order", "[data][api][loader]") {
  auto dataset = Numbers(10).map(transforms::Stack<>());
  auto sequential = data::make_data_loader<samplers::SequentialSampler>(dataset, 4);
  const std::vector<std::vector<int64_t>> expected = {{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9}};
  CHECK(epoch_targets(*sequential) == expected);
  CHECK(epoch_targets(*sequential) == expected);  // a second epoch starts over
  auto dropping = data::make_data_loader<samplers::SequentialSampler>(dataset, data::DataLoaderOptions().batch_size(4).drop_last(true));
  CHECK(epoch_targets(*dropping) == std::vector<std::vector<int64_t>>{{0, 1, 2, 3}, {4, 5, 6, 7}});
  for (size_t workers : {1u, 2u, 3u}) {
    auto threaded = data::make_data_loader<samplers::SequentialSampler>(dataset, data::DataLoaderOptions(4).workers(workers));
    CHECK(epoch_targets(*threaded) == expected);
    CHECK(epoch_targets(*threaded) == expected);
    auto limited = data::make_data_loader<samplers::SequentialSampler>(dataset, data::DataLoaderOptions(3).workers(workers).max_jobs(1));
    CHECK(epoch_targets(*limited).size() == 4);
  }
  // The default sampler is a RandomSampler: every example once per epoch, reproducible from the seed.
  manual_seed(9);
  auto shuffled = data::make_data_loader(dataset, data::DataLoaderOptions(3).workers(2));
  std::vector<std::vector<int64_t>> first = epoch_targets(*shuffled);
  std::multiset<int64_t> seen;
  for (auto& b : first) seen.insert(b.begin(), b.end());
  CHECK(seen == std::multiset<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  manual_seed(9);
  auto replay = data::make_data_loader(dataset, data::DataLoaderOptions(3));
  CHECK(epoch_targets(*replay) == first);  // same seed, no workers: the same batches
  // Without a Stack the batch is the vector of examples.
  auto raw = data::make_data_loader<samplers::SequentialSampler>(Numbers(3), 2);
  auto it = raw->begin();
  CHECK(it->size() == 2);
  CHECK((*it)[1].target.item<int64_t>() == 1);
}

TEST_CASE("make_data_loader: unordered workers hand out every batch once", "[data][api][loader]") {
  auto dataset = Numbers(40).map(transforms::Stack<>());
  auto loader = data::make_data_loader<samplers::SequentialSampler>(dataset, data::DataLoaderOptions(4).workers(3).enforce_ordering(false));
  std::multiset<int64_t> seen;
  for (auto& batch : *loader) {
    const std::vector<int64_t> t = targets_of(batch);
    REQUIRE(t.size() == 4);
    for (size_t i = 1; i < t.size(); ++i) CHECK(t[i] == t[0] + static_cast<int64_t>(i));  // a batch stays whole
    seen.insert(t.begin(), t.end());
  }
  CHECK(seen.size() == 40);
  CHECK(std::set<int64_t>(seen.begin(), seen.end()).size() == 40);
}

TEST_CASE("make_data_loader: random transforms give the same batches for any number of workers", "[data][api][loader]") {
  Tensor images = rand({12, 1, 5, 5});
  struct Images : datasets::Dataset<Images> {
    Tensor images;
    data::Example<> get(size_t i) override { return {images[static_cast<int64_t>(i)], full({}, double(i), kInt64)}; }
    std::optional<size_t> size() const override { return static_cast<size_t>(images.size(0)); }
  };
  Images source;
  source.images = images;
  auto augmented = source.map(transforms::RandomTranslate(2)).map(transforms::RandomHorizontalFlip(0.5)).map(transforms::Stack<>());
  std::vector<Tensor> reference;
  for (size_t workers : {0u, 1u, 3u}) {
    auto loader = data::make_data_loader<samplers::SequentialSampler>(augmented, data::DataLoaderOptions(5).workers(workers).seed(42));
    std::vector<Tensor> batches;
    for (auto& batch : *loader) batches.push_back(batch.data);
    if (reference.empty()) {
      reference = batches;
      REQUIRE(reference.size() == 3);
      CHECK(!equal(reference[0], images.narrow(0, 0, 5)));  // something moved
    } else {
      REQUIRE(batches.size() == reference.size());
      for (size_t i = 0; i < batches.size(); ++i) CHECK(equal(batches[i], reference[i]));
    }
  }
}

namespace {
/// Example 5 cannot be read; `kind` chooses what the failure throws.
struct Broken : datasets::Dataset<Broken> {
  int kind = 0;
  data::Example<> get(size_t index) override {
    if (index == 5) {
      if (kind == 0) XG_ERROR("Broken: example {} is unreadable", index);
      if (kind == 1) throw std::runtime_error("disk on fire");
      throw 42;
    }
    return {full({1}, double(index)), full({}, double(index), kInt64)};
  }
  std::optional<size_t> size() const override { return 8; }
};

struct Slow : datasets::Dataset<Slow> {
  data::Example<> get(size_t index) override {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    return {full({1}, double(index)), full({}, double(index), kInt64)};
  }
  std::optional<size_t> size() const override { return 2; }
};
}  // namespace

TEST_CASE("make_data_loader: a worker's exception reaches the caller as xg::Error", "[data][api][loader]") {
  for (size_t workers : {0u, 2u}) {
    Broken broken;
    auto loader = data::make_data_loader<samplers::SequentialSampler>(broken.map(transforms::Stack<>()),
                                                                      data::DataLoaderOptions(2).workers(workers));
    std::vector<int64_t> before;
    auto run = [&] {
      for (auto& batch : *loader) {
        auto t = targets_of(batch);
        before.insert(before.end(), t.begin(), t.end());
      }
    };
    CHECK_THROWS_WITH(run(), Contains("example 5 is unreadable"));
    CHECK(before == std::vector<int64_t>{0, 1, 2, 3});  // the batches before the failing one arrived, in order
    // A new epoch starts over cleanly and meets the same failure at the same batch.
    before.clear();
    CHECK_THROWS_WITH(run(), Contains("example 5 is unreadable"));
    CHECK(before == std::vector<int64_t>{0, 1, 2, 3});
  }
  Broken foreign;
  foreign.kind = 1;
  auto loader = data::make_data_loader<samplers::SequentialSampler>(foreign.map(transforms::Stack<>()), data::DataLoaderOptions(2).workers(2));
  auto run = [&] {
    for (auto& batch : *loader) (void)batch;
  };
  CHECK_THROWS_AS(run(), Error);
  CHECK_THROWS_WITH(run(), Contains("worker failed while making batch 2") && Contains("disk on fire"));
  Broken odd;
  odd.kind = 2;
  auto odd_loader = data::make_data_loader<samplers::SequentialSampler>(odd.map(transforms::Stack<>()), data::DataLoaderOptions(2).workers(1));
  auto run_odd = [&] {
    for (auto& batch : *odd_loader) (void)batch;
  };
  CHECK_THROWS_WITH(run_odd(), Contains("not a std::exception"));
}

TEST_CASE("make_data_loader: timeout, options and join", "[data][api][loader]") {
  auto slow = data::make_data_loader<samplers::SequentialSampler>(
      Slow().map(transforms::Stack<>()), data::DataLoaderOptions(1).workers(1).timeout(std::chrono::milliseconds(20)));
  CHECK_THROWS_WITH(slow->begin(), Contains("timeout of 20 ms") && Contains("1 worker"));
  auto patient = data::make_data_loader<samplers::SequentialSampler>(
      Slow().map(transforms::Stack<>()), data::DataLoaderOptions(1).workers(2).timeout(std::chrono::milliseconds(5000)));
  int64_t count = 0;
  for (auto& batch : *patient) count += batch.data.size(0);
  CHECK(count == 2);

  auto dataset = Numbers(4).map(transforms::Stack<>());
  CHECK_THROWS_WITH(data::make_data_loader(dataset, 0), Contains("batch_size must be positive"));
  CHECK_THROWS_WITH(data::make_data_loader(dataset, data::DataLoaderOptions(2).shuffle(true)), Contains("shuffle and sampler"));
  CHECK_THROWS_WITH(data::make_data_loader(dataset, data::DataLoaderOptions(2).max_jobs(2)), Contains("max_jobs needs workers"));
  CHECK_THROWS_WITH(data::make_data_loader(dataset, data::DataLoaderOptions(2).workers(1).max_jobs(0)), Contains("max_jobs must be positive"));

  data::DataLoaderOptions options = data::DataLoaderOptions().batch_size(64).workers(2).drop_last(true);
  CHECK(options.batch_size() == 64);
  CHECK(options.workers() == 2);
  CHECK(options.drop_last());
  CHECK(options.enforce_ordering());
  CHECK(!options.max_jobs().has_value());

  auto joined = data::make_data_loader<samplers::SequentialSampler>(dataset, data::DataLoaderOptions(2).workers(2));
  auto it = joined->begin();  // an epoch abandoned half way
  CHECK(targets_of(*it) == std::vector<int64_t>{0, 1});
  joined->join();
  CHECK_THROWS_WITH(joined->begin(), Contains("after join()"));
}

namespace {
/// A classic dataset whose example 5 cannot be read.
struct ClassicFailing : data::TensorDataset {
  ClassicFailing() : data::TensorDataset(zeros({8, 1}), arange(8)) {}
  data::Example<> get_batch(const std::vector<int64_t>& indices) const override {
    for (int64_t i : indices) XG_CHECK(i != 5, "ClassicFailing: example {} is unreadable", i);
    return data::TensorDataset::get_batch(indices);
  }
};

/// Every epoch of a classic loader, as (targets, data) per batch.
std::vector<std::pair<std::vector<int64_t>, std::vector<double>>> run_epochs(data::DataLoader& loader, int epochs) {
  std::vector<std::pair<std::vector<int64_t>, std::vector<double>>> out;
  for (int e = 0; e < epochs; ++e)
    for (const auto& batch : loader) {
      Tensor data = batch.data.to(kFloat64).contiguous();
      out.emplace_back(targets_of(batch), std::vector<double>(data.data_ptr<double>(), data.data_ptr<double>() + data.numel()));
    }
  return out;
}
}  // namespace

TEST_CASE("the classic DataLoader is make_data_loader underneath: workers, same batches, resume", "[data][api][loader]") {
  auto dataset = std::make_shared<data::TensorDataset>(arange(0, 10, 1, kFloat32).reshape({10, 1}), arange(10));
  // A random transform: adds a draw of the batch's generator to every element.
  data::BatchTransform jitter = [](const Tensor& x, std::mt19937_64& g) {
    return add(x, full({}, static_cast<double>(g() % 1000) / 1000.0, x.dtype()));
  };
  auto options = [] { return data::DataLoaderOptions(4).shuffle(true).seed(5); };

  // The order and seeds are the documented recipe: Fisher-Yates with generator() % (i + 1) over
  // 0..N-1 from std::mt19937_64(seed), then one transform seed per batch; the transform's generator is
  // std::mt19937_64(batch seed).
  std::mt19937_64 reference(5);
  std::vector<int64_t> order(10);
  std::iota(order.begin(), order.end(), int64_t{0});
  for (int64_t i = 9; i > 0; --i) std::swap(order[i], order[reference() % static_cast<uint64_t>(i + 1)]);
  std::vector<uint64_t> seeds(3);
  for (uint64_t& seed : seeds) seed = reference();

  data::DataLoader on_caller(dataset, options().prefetch(false), jitter);
  const auto expected = run_epochs(on_caller, 2);
  REQUIRE(expected.size() == 6);
  for (size_t b = 0; b < 3; ++b) {
    std::vector<int64_t> want(order.begin() + 4 * b, order.begin() + std::min<size_t>(10, 4 * b + 4));
    CHECK(expected[b].first == want);
    std::mt19937_64 g(seeds[b]);
    const double shift = static_cast<double>(static_cast<float>(static_cast<double>(g() % 1000) / 1000.0));
    for (size_t k = 0; k < want.size(); ++k) CHECK(expected[b].second[k] == static_cast<double>(static_cast<float>(want[k] + shift)));
  }
  std::set<int64_t> second_epoch;
  for (size_t b = 3; b < 6; ++b) second_epoch.insert(expected[b].first.begin(), expected[b].first.end());
  CHECK(second_epoch.size() == 10);

  // Prefetching and worker threads make the same batches.
  data::DataLoader prefetching(dataset, options(), jitter);
  CHECK(run_epochs(prefetching, 2) == expected);
  data::DataLoader threaded(dataset, options().workers(3), jitter);
  CHECK(run_epochs(threaded, 2) == expected);
  data::DataLoader few_jobs(dataset, options().workers(2).max_jobs(1), jitter);
  CHECK(run_epochs(few_jobs, 2) == expected);
  data::DataLoader unordered(dataset, options().workers(2).enforce_ordering(false), jitter);
  auto any_order = run_epochs(unordered, 2);
  CHECK(std::is_permutation(any_order.begin(), any_order.begin() + 3, expected.begin()));

  // Resume: the state after epoch 1, given to a loader with another seed, continues with epoch 2.
  data::DataLoader first(dataset, options().workers(2), jitter);
  run_epochs(first, 1);
  data::DataLoader resumed(dataset, data::DataLoaderOptions(4).shuffle(true).seed(99).workers(2), jitter);
  resumed.set_generator_state(first.generator_state());
  CHECK(run_epochs(resumed, 1) == std::vector<std::pair<std::vector<int64_t>, std::vector<double>>>(expected.begin() + 3, expected.end()));

  // A dataset error on a worker reaches the loop as xg::Error.
  data::DataLoader failing(std::make_shared<ClassicFailing>(), data::DataLoaderOptions(2).workers(2));
  auto iterate = [&] {
    for (const auto& batch : failing) (void)batch;
  };
  CHECK_THROWS_AS(iterate(), Error);
  CHECK_THROWS_WITH(iterate(), Contains("example 5 is unreadable"));
  CHECK_THROWS_WITH(data::DataLoader(dataset, data::DataLoaderOptions(2).max_jobs(2)), Contains("DataLoader: max_jobs needs workers"));
  CHECK_THROWS_WITH(data::DataLoader(dataset, data::DataLoaderOptions(2).workers(1).timeout(std::chrono::milliseconds(0))),
                    Contains("DataLoader: timeout must be positive"));
}

TEST_CASE("SharedBatchDataset: one dataset shared by the workers; classic datasets in make_data_loader", "[data][api][loader]") {
  auto shared = datasets::make_shared_dataset<data::TensorDataset>(arange(0, 20, 1, kFloat32).reshape({10, 2}), arange(10));
  CHECK(shared.size() == std::optional<size_t>(10));
  CHECK(shared->size() == 10);  // the classic dataset behind it
  auto loader = data::make_data_loader<samplers::SequentialSampler>(shared, data::DataLoaderOptions(3).workers(2));
  std::vector<int64_t> seen;
  for (auto& batch : *loader) {
    CHECK(batch.data.sizes() == Shape{std::min<int64_t>(3, 10 - static_cast<int64_t>(seen.size())), 2});
    for (int64_t t : targets_of(batch)) {
      // row t of the data is [2t, 2t + 1]
      CHECK(batch.data[static_cast<int64_t>(seen.size()) % 3][0].item<float>() == 2.0f * static_cast<float>(t));
      seen.push_back(t);
    }
  }
  CHECK(seen == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});

  // A split of a classic dataset, through a pointer to const.
  auto parts = data::random_split(std::make_shared<data::TensorDataset>(zeros({6, 1}), arange(6)), {4, 2}, 3);
  datasets::SharedBatchDataset<const data::Dataset> part(parts[1]);
  std::multiset<int64_t> from_loader;
  auto part_loader = data::make_data_loader<samplers::RandomSampler>(part, 1);
  for (auto& batch : *part_loader) {
    auto t = targets_of(batch);
    from_loader.insert(t.begin(), t.end());
  }
  CHECK(from_loader == std::multiset<int64_t>(parts[1]->indices().begin(), parts[1]->indices().end()));

  // A libtorch-style dataset shared instead of copied: the workers see one object.
  auto numbers = datasets::make_shared_dataset<Numbers>(5);
  CHECK(numbers.size() == std::optional<size_t>(5));
  auto stacked = data::make_data_loader<samplers::SequentialSampler>(numbers.map(transforms::Stack<>()), data::DataLoaderOptions(5).workers(2));
  for (auto& batch : *stacked) CHECK(targets_of(batch) == std::vector<int64_t>{0, 1, 2, 3, 4});
  CHECK_THROWS_WITH(datasets::SharedBatchDataset<data::TensorDataset>(nullptr), Contains("SharedBatchDataset") && Contains("null"));
}

TEST_CASE("make_data_loader resumes at an epoch boundary: loader generator and xg's global generator", "[data][api][loader]") {
  // A random transform (draws batch_generator()) over a RandomSampler (draws xg's global generator).
  auto make_loader = [](uint64_t seed) {
    auto jittered = Numbers(9)
                        .map(transforms::TensorLambda<>([](Tensor x) {
                          return add(x, full({}, static_cast<double>(data::batch_generator()() % 1000), x.dtype()));
                        }))
                        .map(transforms::Stack<>());
    return data::make_data_loader<samplers::RandomSampler>(std::move(jittered), data::DataLoaderOptions(4).workers(2).seed(seed));
  };
  auto epoch = [](auto& loader) {
    std::vector<std::vector<double>> batches;
    for (auto& batch : *loader) {
      Tensor d = batch.data.contiguous();
      batches.emplace_back(d.data_ptr<float>(), d.data_ptr<float>() + d.numel());
    }
    return batches;
  };
  manual_seed(21);
  auto uninterrupted = make_loader(3);
  epoch(uninterrupted);
  const auto second = epoch(uninterrupted);

  manual_seed(21);
  auto first_run = make_loader(3);
  epoch(first_run);
  const std::string loader_state = first_run->generator_state(), global_state = random::get_state();

  manual_seed(77);
  auto resumed = make_loader(8);
  resumed->set_generator_state(loader_state);
  random::set_state(global_state);
  CHECK(epoch(resumed) == second);

  // The test has teeth: without the loader's state the transforms draw other values.
  manual_seed(77);
  auto half_restored = make_loader(8);
  random::set_state(global_state);
  CHECK(epoch(half_restored) != second);
  CHECK_THROWS_WITH(resumed->set_generator_state("not a state"), Contains("make_data_loader") && Contains("generator state"));
}
