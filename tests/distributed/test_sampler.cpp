// DistributedSampler (PyTorch's sharding, padding and drop_last rules) and the DataLoader's sampler
// hook. No MPI: the ranks are simulated by constructing one sampler per rank.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <numeric>
#include <set>

#include <xgrad/data/distributed_sampler.hpp>
#include <xgrad/xgrad.hpp>

using namespace xg;
using data::DistributedSampler;
using data::DistributedSamplerOptions;
using Catch::Matchers::Contains;

namespace {
std::vector<std::vector<int64_t>> all_shards(int64_t n, int64_t replicas, bool shuffle, bool drop_last, uint64_t seed = 0,
                                             int64_t epoch = 0) {
  std::vector<std::vector<int64_t>> shards;
  for (int64_t rank = 0; rank < replicas; ++rank) {
    DistributedSampler sampler(n, DistributedSamplerOptions(replicas, rank).shuffle(shuffle).drop_last(drop_last).seed(seed));
    sampler.set_epoch(epoch);
    shards.push_back(sampler.indices());
    REQUIRE(static_cast<int64_t>(shards.back().size()) == sampler.size());
  }
  return shards;
}
}  // namespace

TEST_CASE("DistributedSampler: without shuffle, PyTorch's shards worked out by hand", "[distributed][sampler]") {
  // N = 10, 3 replicas: 12 = 3 * ceil(10 / 3) indices, 0..9 then 0, 1 as padding; rank r takes r, r+3, ...
  auto shards = all_shards(10, 3, false, false);
  CHECK(shards[0] == std::vector<int64_t>{0, 3, 6, 9});
  CHECK(shards[1] == std::vector<int64_t>{1, 4, 7, 0});
  CHECK(shards[2] == std::vector<int64_t>{2, 5, 8, 1});
  // drop_last: floor(10 / 3) = 3 each, index 9 is never visited.
  shards = all_shards(10, 3, false, true);
  CHECK(shards[0] == std::vector<int64_t>{0, 3, 6});
  CHECK(shards[1] == std::vector<int64_t>{1, 4, 7});
  CHECK(shards[2] == std::vector<int64_t>{2, 5, 8});
  // Fewer examples than replicas: the padding wraps around as often as needed (0, 1, 0, 1, 0).
  shards = all_shards(2, 5, false, false);
  for (int64_t rank = 0; rank < 5; ++rank) CHECK(shards[static_cast<size_t>(rank)] == std::vector<int64_t>{rank % 2});
  // ... and with drop_last nobody gets anything.
  shards = all_shards(2, 5, false, true);
  for (const auto& shard : shards) CHECK(shard.empty());
  CHECK(all_shards(0, 3, true, false)[1].empty());
}

TEST_CASE("DistributedSampler: shards partition the dataset, with PyTorch's padding", "[distributed][sampler]") {
  for (int64_t n : {1, 5, 10, 11, 12, 13, 100, 257}) {
    for (int64_t replicas : {1, 2, 3, 4, 7}) {
      for (bool shuffle : {false, true}) {
        for (bool drop_last : {false, true}) {
          CAPTURE(n, replicas, shuffle, drop_last);
          auto shards = all_shards(n, replicas, shuffle, drop_last, 42, 3);
          std::map<int64_t, int64_t> visits;
          for (const auto& shard : shards)
            for (int64_t index : shard) {
              REQUIRE(index >= 0);
              REQUIRE(index < n);
              ++visits[index];
            }
          const int64_t per_rank = drop_last ? n / replicas : (n + replicas - 1) / replicas;
          for (const auto& shard : shards) CHECK(static_cast<int64_t>(shard.size()) == per_rank);
          if (!drop_last) {
            // Every example is visited; the padding (per_rank * replicas - n) repeats some.
            CHECK(static_cast<int64_t>(visits.size()) == n);
            int64_t repeats = 0;
            for (const auto& [index, count] : visits) repeats += count - 1;
            CHECK(repeats == per_rank * replicas - n);
          } else {
            // Nothing is visited twice; exactly the tail that does not fill a round is dropped.
            CHECK(static_cast<int64_t>(visits.size()) == per_rank * replicas);
            for (const auto& [index, count] : visits) CHECK(count == 1);
          }
        }
      }
    }
  }
}

TEST_CASE("DistributedSampler: shuffling is one permutation per seed and epoch, the same on every rank",
          "[distributed][sampler]") {
  auto epoch0 = all_shards(12, 3, true, false, 7, 0);
  auto epoch0_again = all_shards(12, 3, true, false, 7, 0);
  auto epoch1 = all_shards(12, 3, true, false, 7, 1);
  auto other_seed = all_shards(12, 3, true, false, 8, 0);
  CHECK(epoch0 == epoch0_again);
  CHECK(epoch0 != epoch1);
  CHECK(epoch0 != other_seed);
  // 12 = 3 * 4: no padding, so the shards of one epoch are disjoint and cover 0..11.
  std::set<int64_t> covered;
  for (const auto& shard : epoch0) covered.insert(shard.begin(), shard.end());
  CHECK(covered.size() == 12);
  // The permutation is not the identity (the shuffle happened), and rank r's k-th index is element
  // r + 3k of one shared permutation: interleaving the shards must give a permutation of 0..11.
  std::vector<int64_t> interleaved;
  for (size_t k = 0; k < 4; ++k)
    for (size_t r = 0; r < 3; ++r) interleaved.push_back(epoch0[r][k]);
  std::vector<int64_t> identity(12);
  std::iota(identity.begin(), identity.end(), int64_t{0});
  CHECK(interleaved != identity);
  std::sort(interleaved.begin(), interleaved.end());
  CHECK(interleaved == identity);
  // set_epoch on one sampler object switches between the orders.
  DistributedSampler sampler(12, DistributedSamplerOptions(3, 1).seed(7));
  sampler.set_epoch(1);
  CHECK(sampler.indices() == epoch1[1]);
  sampler.set_epoch(0);
  CHECK(sampler.indices() == epoch0[1]);
}

TEST_CASE("DistributedSampler: bad arguments are errors", "[distributed][sampler]") {
  CHECK_THROWS_WITH(DistributedSampler(10, DistributedSamplerOptions(0, 0)), Contains("num_replicas > 0, got 0"));
  CHECK_THROWS_WITH(DistributedSampler(10, DistributedSamplerOptions(2, 2)), Contains("rank in [0, 2), got 2"));
  CHECK_THROWS_WITH(DistributedSampler(10, DistributedSamplerOptions(2, -1)), Contains("rank in [0, 2), got -1"));
  CHECK_THROWS_WITH(DistributedSampler(-1, DistributedSamplerOptions(2, 0)), Contains("dataset size >= 0, got -1"));
  DistributedSampler sampler(10, DistributedSamplerOptions(2, 0));
  CHECK_THROWS_WITH(sampler.set_epoch(-3), Contains("epoch >= 0, got -3"));
}

TEST_CASE("DataLoader: a sampler chooses the indices of each epoch", "[distributed][sampler]") {
  auto dataset = std::make_shared<data::TensorDataset>(arange(10).to(kFloat32).unsqueeze(1), arange(10));
  auto sampler = std::make_shared<DistributedSampler>(10, DistributedSamplerOptions(3, 1).shuffle(false));
  data::DataLoader loader(dataset, data::DataLoaderOptions(3).sampler(sampler).prefetch(false));
  REQUIRE(loader.size() == 2);  // 4 indices for rank 1, batches of 3 and 1
  std::vector<std::vector<int64_t>> batches;
  for (const auto& batch : loader) {
    std::vector<int64_t> targets;
    for (int64_t i = 0; i < batch.target.numel(); ++i) targets.push_back(batch.target.data_ptr<int64_t>()[i]);
    batches.push_back(targets);
  }
  CHECK(batches == std::vector<std::vector<int64_t>>{{1, 4, 7}, {0}});

  // The loader asks again at each epoch: a shuffling sampler moved to another epoch changes the batches.
  auto shuffling = std::make_shared<DistributedSampler>(10, DistributedSamplerOptions(2, 0).seed(3));
  data::DataLoader shuffled(dataset, data::DataLoaderOptions(5).sampler(shuffling));
  auto first_targets = [&] {
    std::vector<int64_t> out;
    for (const auto& batch : shuffled)
      for (int64_t i = 0; i < batch.target.numel(); ++i) out.push_back(batch.target.data_ptr<int64_t>()[i]);
    return out;
  };
  std::vector<int64_t> epoch0 = first_targets();
  CHECK(epoch0 == shuffling->indices());
  shuffling->set_epoch(1);
  std::vector<int64_t> epoch1 = first_targets();
  CHECK(epoch1 == shuffling->indices());
  CHECK(epoch0 != epoch1);

  CHECK_THROWS_WITH(data::DataLoader(dataset, data::DataLoaderOptions(2).sampler(sampler).shuffle(true)),
                    Contains("mutually exclusive"));
  struct OutOfRange : data::Sampler {
    std::vector<int64_t> indices() override { return {0, 10}; }
    int64_t size() const override { return 2; }
  };
  data::DataLoader bad(dataset, data::DataLoaderOptions(2).sampler(std::make_shared<OutOfRange>()));
  CHECK_THROWS_WITH(bad.begin(), Contains("the sampler gave index 10 for a dataset of size 10"));
}
