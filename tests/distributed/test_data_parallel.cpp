// DistributedDataParallel under mpirun: after each step every rank holds the same parameters, equal
// to those of one process training on the concatenated batch (computed here, independently, by a
// reference model on every rank); bucketing, overlap during backward, gradient accumulation, unused
// and shared parameters, buffers, and errors that every rank must see alike.
#include <catch2/catch.hpp>

#include <xgrad/xgrad.hpp>

using namespace xg;
namespace dist = xg::distributed;
using Catch::Matchers::Contains;
using dist::DistributedDataParallel;
using dist::DistributedDataParallelOptions;

namespace {

/// A small CNN with a layer applied twice (two gradient contributions to its parameters per backward),
/// a parameter the forward never uses, and optionally a float64 parameter in a float32 model.
class NetImpl : public nn::Module {
 public:
  explicit NetImpl(bool with_float64_scale = false) : nn::Module("Net") {
    conv = register_module("conv", nn::Conv2d(nn::Conv2dOptions(1, 3, 3).padding(1)));
    pool = register_module("pool", nn::MaxPool2d(2));
    hidden = register_module("hidden", nn::Linear(12, 12));
    head = register_module("head", nn::Linear(12, 4));
    unused = register_parameter("unused", randn({5}));
    if (with_float64_scale) scale = register_parameter("scale", full({1}, 1.5, TensorOptions(kFloat64)));
  }
  /// x: [N, 1, 4, 4] -> logits [N, 4].
  Tensor forward(const Tensor& x) {
    Tensor h = pool(relu(conv(x))).flatten(1);
    h = tanh(hidden(h));
    h = tanh(hidden(h));
    if (scale.defined()) h = h * scale.to(h.dtype());
    return head(h);
  }
  nn::Conv2d conv{nullptr};
  nn::MaxPool2d pool{nullptr};
  nn::Linear hidden{nullptr}, head{nullptr};
  Tensor unused, scale;
};
XG_MODULE(Net);

/// Rows [first, first + count) of a batch.
Tensor rows(const Tensor& t, int64_t first, int64_t count) { return t.narrow(0, first, count); }

/// A copy of rank 0's value of `t`, to compare ranks bit for bit.
Tensor rank0_copy(const Tensor& t) {
  Tensor copy = t.detach().clone();
  dist::broadcast(copy, 0);
  return copy;
}

/// Trains `steps` SGD-with-momentum steps through DDP (each rank on its rows of the batch) and a
/// reference model on the whole batch; after each step checks every parameter against the reference
/// and against rank 0's copy. Returns the DDP wrapper's stats of the last step.
dist::DistributedDataParallelStats check_matches_single_process(Dtype dtype, DistributedDataParallelOptions options,
                                                                double tolerance, bool with_float64_scale = false,
                                                                int64_t* buckets = nullptr) {
  const int world = dist::get_world_size(), rank = dist::get_rank();
  const int64_t per_rank = 3;
  manual_seed(100 + static_cast<uint64_t>(rank));  // different on every rank: DDP must broadcast rank 0's
  Net model(with_float64_scale);
  manual_seed(100);
  Net reference(with_float64_scale);
  if (dtype == kFloat64) {
    model->to(dtype);
    reference->to(dtype);
  }
  DistributedDataParallel ddp(model, options);
  if (buckets) *buckets = ddp.num_buckets();
  optim::SGD optimizer(model->parameters(), optim::SGDOptions(0.1).momentum(0.9));
  optim::SGD reference_optimizer(reference->parameters(), optim::SGDOptions(0.1).momentum(0.9));
  manual_seed(7);  // the same global batches on every rank
  for (int step = 0; step < 3; ++step) {
    CAPTURE(step);
    Tensor x = randn({world * per_rank, 1, 4, 4}, TensorOptions(dtype));
    Tensor y = randint(0, 4, {world * per_rank});
    optimizer.zero_grad();
    Tensor loss = nn::functional::cross_entropy(model->forward(rows(x, rank * per_rank, per_rank)),
                                                rows(y, rank * per_rank, per_rank));
    ddp.backward(loss);
    optimizer.step();

    reference_optimizer.zero_grad();
    nn::functional::cross_entropy(reference->forward(x), y).backward();
    reference_optimizer.step();

    auto expected = reference->named_parameters();
    for (const auto& [name, param] : model->named_parameters()) {
      CAPTURE(name);
      CHECK(allclose(param, expected[name], tolerance, tolerance));
      CHECK(equal(param, rank0_copy(param)));
      CHECK(param.grad().defined() == expected[name].grad().defined());
    }
    CHECK_FALSE(model->unused.grad().defined());
  }
  return ddp.last_stats();
}

}  // namespace

TEST_CASE("DDP: one bucket per parameter, overlapped with backward, float64: matches one process on the whole batch",
          "[distributed][ddp]") {
  int64_t buckets = 0;
  auto stats = check_matches_single_process(kFloat64, DistributedDataParallelOptions().bucket_cap_mb(1e-9), 1e-10,
                                            false, &buckets);
  CHECK(buckets == 7);
  CHECK(stats.buckets == 7);
  // Every bucket was started by a gradient hook during backward. The unused parameter (registered on
  // the module itself, so first in parameters(), so in the last bucket) is complete from the start,
  // but buckets start in order: it goes right after the bucket of conv.weight.
  CHECK(stats.buckets_launched_in_backward == 7);
}

TEST_CASE("DDP: default buckets, float32, with a float64 parameter: matches one process", "[distributed][ddp]") {
  int64_t buckets = 0;
  auto stats = check_matches_single_process(kFloat32, DistributedDataParallelOptions(), 1e-5, true, &buckets);
  CHECK(buckets == 2);  // one per dtype
  CHECK(stats.buckets_launched_in_backward == 2);
}

TEST_CASE("DDP: the synchronous fallback matches one process", "[distributed][ddp]") {
  auto stats = check_matches_single_process(
      kFloat64, DistributedDataParallelOptions().bucket_cap_mb(1e-4).overlap_communication(false), 1e-10);
  CHECK(stats.buckets_launched_in_backward == 0);
  CHECK(stats.buckets >= 2);
}

TEST_CASE("DDP: gradient accumulation averages the whole accumulated gradient once", "[distributed][ddp]") {
  const int world = dist::get_world_size(), rank = dist::get_rank();
  const int64_t per_rank = 2;
  manual_seed(100);
  Net model;
  Net reference;
  reference->load_state_dict(model->state_dict());
  model->to(kFloat64);
  reference->to(kFloat64);
  DistributedDataParallel ddp(model, DistributedDataParallelOptions().bucket_cap_mb(1e-9));
  manual_seed(11);
  Tensor x = randn({2 * world * per_rank, 1, 4, 4}, TensorOptions(kFloat64));
  Tensor y = randint(0, 4, {2 * world * per_rank});
  auto micro_batch_loss = [&](Net& net, int micro, int r) {
    const int64_t first = (micro * world + r) * per_rank;
    return nn::functional::cross_entropy(net->forward(rows(x, first, per_rank)), rows(y, first, per_rank));
  };
  for (int round = 0; round < 2; ++round) {
    CAPTURE(round);
    // Gradients left from before (round 1 keeps round 0's): they belong to the accumulated gradient too.
    micro_batch_loss(model, 0, rank).backward();  // local only
    ddp.backward(micro_batch_loss(model, 1, rank));
    for (int micro = 0; micro < 2; ++micro)
      for (int r = 0; r < world; ++r) (micro_batch_loss(reference, micro, r) / static_cast<double>(world)).backward();
    auto expected = reference->named_parameters();
    for (const auto& [name, param] : model->named_parameters()) {
      CAPTURE(name);
      REQUIRE(param.grad().defined() == expected[name].grad().defined());
      if (!param.grad().defined()) continue;
      CHECK(allclose(param.grad(), expected[name].grad(), 1e-10, 1e-12));
      CHECK(equal(param.grad(), rank0_copy(param.grad())));
    }
  }
}

TEST_CASE("DDP: buckets follow reverse registration order and close at bucket_cap_mb", "[distributed][ddp]") {
  manual_seed(3);
  nn::Sequential model(nn::Linear(4, 3), nn::Linear(3, 2));  // 12 + 3 + 6 + 2 float32 elements
  // 32 bytes = 8 floats: 1.bias (2) + 1.weight (6) reach it; then 0.bias (3) + 0.weight (12).
  DistributedDataParallel ddp(model, DistributedDataParallelOptions().bucket_cap_mb(32.0 / (1024 * 1024)));
  CHECK(ddp.bucket_parameter_names() ==
        std::vector<std::vector<std::string>>{{"1.bias", "1.weight"}, {"0.bias", "0.weight"}});
  DistributedDataParallel one_bucket(model);
  CHECK(one_bucket.num_buckets() == 1);
}

TEST_CASE("DDP: buffers follow rank 0 after each step unless told otherwise", "[distributed][ddp]") {
  const int rank = dist::get_rank();
  for (bool broadcast_buffers : {true, false}) {
    CAPTURE(broadcast_buffers);
    manual_seed(21);
    nn::Sequential model(nn::Linear(2, 3), nn::BatchNorm1d(3));
    manual_seed(21);
    nn::Sequential reference(nn::Linear(2, 3), nn::BatchNorm1d(3));
    DistributedDataParallel ddp(model, DistributedDataParallelOptions().broadcast_buffers(broadcast_buffers));
    auto batch_of = [](int r) {
      manual_seed(50 + static_cast<uint64_t>(r));
      return randn({4, 2}) * static_cast<double>(r + 1);
    };
    Tensor x = batch_of(rank);
    ddp.backward(model->forward(x).sum());
    // The running mean after one training forward is 0.1 * the batch mean of the forwarding rank.
    reference->forward(batch_of(broadcast_buffers ? 0 : rank));
    CHECK(allclose(model[1]->named_buffers()["running_mean"], reference[1]->named_buffers()["running_mean"], 1e-5, 1e-7));
  }
}

TEST_CASE("DDP: misuse is an error on every rank, and the step can still be completed", "[distributed][ddp]") {
  manual_seed(9);
  Net model;
  DistributedDataParallel ddp(model, DistributedDataParallelOptions().bucket_cap_mb(1e-9));
  Tensor x = randn({2, 1, 4, 4});
  Tensor loss = model->forward(x).sum();

  CHECK_THROWS_WITH(ddp.prepare_for_backward(x), Contains("expected the loss to backward from"));
  ddp.prepare_for_backward(loss);
  CHECK_THROWS_WITH(ddp.prepare_for_backward(loss), Contains("not finished with finalize_backward()"));
  loss.backward({}, /*retain_graph=*/true);
  // A second backward after one prepare would add gradients to buckets already sent.
  CHECK_THROWS_WITH(loss.backward(), Contains("received a gradient after its bucket was all-reduced"));
  ddp.finalize_backward();
  // A plain backward (no prepare) accumulates locally; finalize_backward then syncs everything.
  model->zero_grad();
  Tensor again = model->forward(x).sum();
  again.backward();
  ddp.finalize_backward();
  CHECK(ddp.last_stats().buckets_launched_in_backward == 0);
  CHECK(equal(model->head->weight.grad(), rank0_copy(model->head->weight.grad())));

  CHECK_THROWS_WITH(DistributedDataParallel(nullptr), Contains("the module is null"));
  CHECK_THROWS_WITH(DistributedDataParallel(model, DistributedDataParallelOptions().bucket_cap_mb(0)),
                    Contains("bucket_cap_mb must be a positive number, got 0"));
}

TEST_CASE("DDP: a model that differs between ranks is an error on every rank", "[distributed][ddp]") {
  if (dist::get_world_size() < 2) return;
  manual_seed(1);
  nn::Sequential model = dist::get_rank() == 1 ? nn::Sequential(nn::Linear(2, 3), nn::Linear(3, 1))
                                               : nn::Sequential(nn::Linear(2, 3), nn::Linear(3, 2));
  CHECK_THROWS_WITH(DistributedDataParallel(model), Contains("differ between ranks"));
}

TEST_CASE("DDP: destroying the wrapper removes its gradient hooks", "[distributed][ddp]") {
  manual_seed(4);
  nn::Sequential model(nn::Linear(2, 2));
  {
    DistributedDataParallel ddp(model);
    for (const Tensor& p : model->parameters()) CHECK(p.impl()->hooks.size() == 1);
  }
  for (const Tensor& p : model->parameters()) CHECK(p.impl()->hooks.empty());
}
