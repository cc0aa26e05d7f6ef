// A program in which rank 1 fails while rank 0 waits for it in a collective. Run under mpirun by
// expect_job_abort.cmake: the job must end promptly, non-zero, with rank 1's message, in every way a
// rank can fail. The mode is the first argument:
//   uncaught  the exception escapes main (std::terminate)
//   caught    main catches it, prints it and returns 1 (InitGuard skips finalize; the exit handler aborts)
//   run       the exception escapes xg::distributed::run's body
//   ddp       rank 1 throws in the middle of a DDP step, while rank 0's buckets are in flight
//   exit      rank 1 calls std::exit(3) (e.g. a bad command line seen by one rank only)
#include <cstdio>
#include <cstdlib>
#include <string>

#include <xgrad/xgrad.hpp>

namespace dist = xg::distributed;

namespace {

void rank0_waits_forever_for_rank1() {
  if (dist::get_rank() == 1) throw xg::Error("failing_rank: deliberate failure on rank 1");
  xg::Tensor t = xg::ones({4});
  dist::all_reduce(t);  // rank 1 never joins: only the abort can end this
  std::printf("rank %d: all_reduce returned, which it must not\n", dist::get_rank());
}

int ddp_step_fails_on_rank1() {
  xg::manual_seed(0);
  xg::nn::Sequential model(xg::nn::Linear(8, 8), xg::nn::Linear(8, 8), xg::nn::Linear(8, 1));
  dist::DistributedDataParallel ddp(model, dist::DistributedDataParallelOptions().bucket_cap_mb(1e-9));
  xg::Tensor x = xg::randn({4, 8});
  xg::Tensor loss = model->forward(x).sum();
  ddp.prepare_for_backward(loss);
  // Rank 1 fails in the middle of backward: after the last layer's buckets have started on rank 0.
  model[1]->parameters()[0].register_hook([](const xg::Tensor& g) -> xg::Tensor {
    if (dist::get_rank() == 1) throw xg::Error("failing_rank: deliberate failure on rank 1 during backward");
    return g;
  });
  loss.backward();
  ddp.finalize_backward();
  std::printf("rank %d: finished the step, which it must not\n", dist::get_rank());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "uncaught") {
    dist::InitGuard guard(argc, argv);
    rank0_waits_forever_for_rank1();
    return 0;
  }
  if (mode == "caught") {
    try {
      dist::InitGuard guard(argc, argv);
      rank0_waits_forever_for_rank1();
    } catch (const std::exception& error) {
      std::fprintf(stderr, "caught: %s\n", error.what());
      return 1;
    }
    return 0;
  }
  if (mode == "run") {
    return dist::run(argc, argv, [] {
      rank0_waits_forever_for_rank1();
      return 0;
    });
  }
  if (mode == "ddp") return dist::run(argc, argv, ddp_step_fails_on_rank1);
  if (mode == "exit") {
    dist::InitGuard guard(argc, argv);
    if (dist::get_rank() == 1) {
      std::fprintf(stderr, "failing_rank: rank 1 exits with code 3\n");
      std::exit(3);
    }
    rank0_waits_forever_for_rank1();
    return 0;
  }
  std::fprintf(stderr, "usage: failing_rank uncaught|caught|run|ddp|exit\n");
  return 2;
}
