// Catch2 main of the MPI suite: every rank runs every test case, in the same order (the cases call
// collectives), and the job fails when any rank has a failure.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <xgrad/xgrad.hpp>

int main(int argc, char** argv) {
  xg::distributed::InitGuard guard(argc, argv);
  Catch::Session session;
  int failures = session.run(argc, argv);
  xg::Tensor any_failures = xg::tensor({static_cast<double>(failures)}, xg::TensorOptions(xg::kFloat64));
  xg::distributed::all_reduce(any_failures, xg::distributed::ReduceOp::kMax);
  if (xg::distributed::is_main_process() && any_failures.item<double>() > 0)
    std::fprintf(stderr, "distributed tests: a rank had failures (see above)\n");
  return any_failures.item<double>() > 0 ? 1 : 0;
}
