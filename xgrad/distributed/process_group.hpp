#pragma once
/// xg::distributed: the processes of one training job (started by `mpirun -np N`), their rank and
/// number, and collectives on tensors over MPI, as torch.distributed's init_process_group,
/// get_rank, get_world_size, all_reduce, broadcast and barrier. xgrad talks on its own duplicate of
/// MPI_COMM_WORLD, so a program's own MPI messages never mix with xgrad's.
///
/// Errors: MPI failures become xg::Error naming the collective. A rank that fails must not leave the
/// others waiting forever in a collective, so after init() an uncaught exception (std::terminate),
/// an exit without finalize(), run()'s body throwing, or abort_job() all print the message with the
/// rank and end the whole job with MPI_Abort.
#include <functional>
#include <string>

#include "xgrad/autograd/tensor.hpp"

#ifndef XGRAD_HAS_MPI
#error "xgrad/distributed needs xgrad built with MPI (found by CMake, option XGRAD_WITH_MPI=ON)"
#endif

namespace xg::distributed {

/// Starts MPI (unless the program already did; then xgrad leaves finalizing MPI to it) and xgrad's
/// communicator. argc/argv are handed to MPI_Init_thread and may be null. Calling it again is a no-op.
void init(int* argc = nullptr, char*** argv = nullptr);
/// Frees xgrad's communicator and finalizes MPI if init() started it. Every rank must call it.
void finalize();
/// True between init() and finalize().
bool is_initialized();
/// This process's index in the job, 0 .. world size - 1 (torch.distributed.get_rank).
int get_rank();
/// Number of processes in the job (torch.distributed.get_world_size).
int get_world_size();
/// True on rank 0, the rank that prints progress and writes checkpoints.
bool is_main_process();
/// Waits until every rank has called it.
void barrier();

/// How all_reduce combines the ranks' values.
enum class ReduceOp {
  kSum,   ///< element-wise sum (float32, float64, int64)
  kMean,  ///< element-wise sum divided by the world size (float32, float64)
  kMax,   ///< element-wise maximum (float32, float64, int64)
  kMin,   ///< element-wise minimum (float32, float64, int64)
};

/// Replaces `tensor`'s values, in place, with the combination over all ranks. Every rank must call it
/// with a tensor of the same shape and dtype, in the same order relative to other collectives. Every
/// handle sharing the data sees the result; the data's version counter is bumped as by any in-place op.
void all_reduce(const Tensor& tensor, ReduceOp op = ReduceOp::kSum);
/// Copies root's values of `tensor` into `tensor` on every other rank, in place (same shape and dtype).
void broadcast(const Tensor& tensor, int root = 0);

/// Prints "[rank r/N] error: <message>" to stderr and ends every process of the job (MPI_Abort) with
/// exit_code. Use it (or let an exception escape) instead of returning early from one rank only.
[[noreturn]] void abort_job(const std::string& message, int exit_code = 1);

/// init(&argc, &argv), body(), finalize(); returns body's exit code. An exception escaping body on
/// any rank is printed with the rank and ends the whole job (MPI_Abort), so no rank hangs.
int run(int& argc, char**& argv, const std::function<int()>& body);

/// RAII form of init()/finalize(). When the scope is left by an exception, finalize() is skipped
/// (MPI_Finalize would wait for ranks still in a collective) and the job ends with MPI_Abort when the
/// process exits, after the program had a chance to print the error.
class InitGuard {
 public:
  InitGuard(int& argc, char**& argv);
  InitGuard();
  ~InitGuard();
  InitGuard(const InitGuard&) = delete;
  InitGuard& operator=(const InitGuard&) = delete;
  int rank() const { return get_rank(); }
  int world_size() const { return get_world_size(); }

 private:
  int uncaught_at_start_;
};

}  // namespace xg::distributed
