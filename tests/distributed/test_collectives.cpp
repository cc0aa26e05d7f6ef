// Collectives under mpirun: all_reduce (sum, mean, max, min; float32, float64, int64), broadcast,
// broadcast_parameters, all_reduce_gradients. Expected values are closed forms in the rank and the
// world size W (rank r contributes (r + 1) * (i + 1) at element i, so the sum is (i + 1) W (W + 1) / 2).
#include <catch2/catch.hpp>

#include <xgrad/xgrad.hpp>

using namespace xg;
namespace dist = xg::distributed;
using Catch::Matchers::Contains;

namespace {
/// Element i of rank r: (r + 1) * (i + 1).
Tensor rank_ramp(int64_t n, Dtype dtype) {
  const int r = dist::get_rank();
  std::vector<double> values;
  for (int64_t i = 0; i < n; ++i) values.push_back(static_cast<double>((r + 1) * (i + 1)));
  return tensor(values, {n}, TensorOptions(dtype));
}
}  // namespace

TEST_CASE("distributed: rank and world size", "[distributed]") {
  const int world = dist::get_world_size(), rank = dist::get_rank();
  CHECK(world >= 1);
  CHECK(rank >= 0);
  CHECK(rank < world);
  CHECK(dist::is_main_process() == (rank == 0));
  // Every rank is distinct: the sum of the ranks is W (W - 1) / 2.
  Tensor sum = tensor({static_cast<double>(rank)}, TensorOptions(kInt64));
  dist::all_reduce(sum);
  CHECK(sum.item<int64_t>() == int64_t{world} * (world - 1) / 2);
}

TEST_CASE("distributed: all_reduce sum, mean, max and min", "[distributed]") {
  const int world = dist::get_world_size();
  const int64_t n = 7;
  for (Dtype dtype : {kFloat32, kFloat64}) {
    CAPTURE(dtype);
    Tensor sum = rank_ramp(n, dtype), mean = rank_ramp(n, dtype), max = rank_ramp(n, dtype), min = rank_ramp(n, dtype);
    const uint64_t version = sum._version();
    dist::all_reduce(sum, dist::ReduceOp::kSum);
    dist::all_reduce(mean, dist::ReduceOp::kMean);
    dist::all_reduce(max, dist::ReduceOp::kMax);
    dist::all_reduce(min, dist::ReduceOp::kMin);
    CHECK(sum._version() == version + 1);
    // Held in variables: data_ptr of a temporary would dangle.
    const Tensor sum64 = sum.to(kFloat64), mean64 = mean.to(kFloat64), max64 = max.to(kFloat64), min64 = min.to(kFloat64);
    for (int64_t i = 0; i < n; ++i) {
      const double base = static_cast<double>(i + 1);
      CHECK(sum64.data_ptr<double>()[i] == base * world * (world + 1) / 2);
      CHECK(mean64.data_ptr<double>()[i] == Approx(base * (world + 1) / 2.0).epsilon(1e-6));
      CHECK(max64.data_ptr<double>()[i] == base * world);
      CHECK(min64.data_ptr<double>()[i] == base);
    }
  }
  Tensor counts = rank_ramp(n, kInt64);
  dist::all_reduce(counts);
  for (int64_t i = 0; i < n; ++i) CHECK(counts.data_ptr<int64_t>()[i] == (i + 1) * world * (world + 1) / 2);
  // Every rank rejects the same bad call before communicating, so nobody is left waiting.
  CHECK_THROWS_WITH(dist::all_reduce(rank_ramp(3, kInt64), dist::ReduceOp::kMean), Contains("kMean needs a float32 or float64"));
  CHECK_THROWS_WITH(dist::all_reduce(Tensor()), Contains("all_reduce: the tensor is undefined"));
}

TEST_CASE("distributed: all_reduce of a large tensor and of a multi-dimensional one", "[distributed]") {
  const int world = dist::get_world_size();
  Tensor big = full({1 << 20}, static_cast<double>(dist::get_rank() + 1));
  dist::all_reduce(big, dist::ReduceOp::kSum);
  const float expected = static_cast<float>(world * (world + 1) / 2);
  const float* data = big.data_ptr<float>();
  CHECK(std::all_of(data, data + big.numel(), [&](float v) { return v == expected; }));
  Tensor grid = rank_ramp(12, kFloat64).reshape({3, 4});
  dist::all_reduce(grid, dist::ReduceOp::kSum);
  CHECK(grid.shape() == Shape{3, 4});
  CHECK(grid.data_ptr<double>()[11] == 12.0 * world * (world + 1) / 2);
}

TEST_CASE("distributed: broadcast copies the root's values", "[distributed]") {
  const int world = dist::get_world_size();
  for (int root = 0; root < world; ++root) {
    Tensor values = rank_ramp(5, kFloat64);
    dist::broadcast(values, root);
    for (int64_t i = 0; i < 5; ++i) CHECK(values.data_ptr<double>()[i] == static_cast<double>((root + 1) * (i + 1)));
  }
  CHECK_THROWS_WITH(dist::broadcast(rank_ramp(2, kFloat32), world), Contains("root must be a rank in [0, "));
}

TEST_CASE("distributed: broadcast_parameters makes every rank start from the root's weights", "[distributed]") {
  // Each rank initialises differently; rank 0's initialisation is reproduced locally from its seed.
  auto make = [](uint64_t seed) {
    manual_seed(seed);
    return nn::Sequential(nn::Linear(3, 4), nn::BatchNorm1d(4), nn::Linear(4, 2));
  };
  nn::Sequential model = make(100 + static_cast<uint64_t>(dist::get_rank()));
  nn::Sequential rank0 = make(100);
  model[1]->named_buffers()["running_mean"].fill_(static_cast<double>(dist::get_rank()));
  dist::broadcast_parameters(*model, 0);
  auto mine = model->state_dict();
  auto expected = rank0->state_dict();
  for (const auto& [name, value] : expected) {
    CAPTURE(name);
    CHECK(equal(mine[name], value));
  }

  // A model that differs on one rank is an error on every rank (nobody proceeds to a mismatched collective).
  manual_seed(1);
  nn::Sequential other = dist::get_rank() == dist::get_world_size() - 1 ? nn::Sequential(nn::Linear(3, 5))
                                                                        : nn::Sequential(nn::Linear(3, 4));
  if (dist::get_world_size() > 1) {
    std::string message;
    try {
      dist::broadcast_parameters(*other, 0);  // collective: one call on every rank
    } catch (const Error& error) {
      message = error.what();
    }
    CHECK_THAT(message, Contains("differ"));
    if (dist::get_rank() == dist::get_world_size() - 1)
      CHECK_THAT(message, Contains("'parameter 0.weight float32 [5, 3] requires_grad=true' on rank"));
  }
}

TEST_CASE("distributed: all_reduce_gradients averages .grad, keeping absent gradients absent", "[distributed]") {
  const int world = dist::get_world_size(), rank = dist::get_rank();
  manual_seed(5);
  nn::Sequential model(nn::Linear(2, 3), nn::Linear(3, 1));
  auto params = model->named_parameters();
  params["0.weight"].set_grad(full({3, 2}, rank + 1.0));              // every rank
  if (rank == 0) params["0.bias"].set_grad(full({3}, 6.0));           // rank 0 only
  params["1.weight"].set_grad(Tensor());                               // nobody
  params["1.bias"].set_grad(full({1}, 2.0 * rank, TensorOptions(kFloat32)));
  dist::all_reduce_gradients(*model);
  CHECK(allclose(params["0.weight"].grad(), full({3, 2}, (world + 1) / 2.0)));
  CHECK(allclose(params["0.bias"].grad(), full({3}, 6.0 / world)));
  CHECK_FALSE(params["1.weight"].grad().defined());
  CHECK(allclose(params["1.bias"].grad(), full({1}, world - 1.0)));  // mean of 0, 2, 4, ... = W - 1
  dist::all_reduce_gradients(*model, dist::ReduceOp::kSum);
  CHECK(allclose(params["0.weight"].grad(), full({3, 2}, world * (world + 1) / 2.0)));
}
