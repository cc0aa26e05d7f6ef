#include "xgrad/distributed/process_group.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <variant>

#include <unistd.h>

#include <fmt/format.h>

#include "xgrad/autograd/parallel.hpp"
#include "xgrad/distributed/mpi_detail.hpp"

namespace xg::distributed {

namespace {

struct ProcessGroupState {
  bool initialized = false;    // between init() and finalize()
  bool started_mpi = false;    // init() called MPI_Init_thread, so finalize() calls MPI_Finalize
  bool handlers_installed = false;
  MPI_Comm comm = MPI_COMM_NULL;
  int rank = 0;
  int world_size = 1;
  std::terminate_handler previous_terminate = nullptr;
};

ProcessGroupState& state() {
  static ProcessGroupState instance;
  return instance;
}

bool mpi_is_live() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  return initialized && !finalized;
}

std::string rank_prefix() {
  const ProcessGroupState& s = state();
  if (s.initialized) return fmt::format("[rank {}/{}] ", s.rank, s.world_size);
  int rank = 0;
  if (mpi_is_live()) {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    return fmt::format("[rank {}] ", rank);
  }
  return "";
}

/// An exception nobody caught: print it with the rank, then take the whole job down.
[[noreturn]] void terminate_handler() {
  std::string message = "terminate called without an active exception";
  if (std::exception_ptr current = std::current_exception()) {
    try {
      std::rethrow_exception(current);
    } catch (const std::exception& error) {
      message = fmt::format("uncaught exception: {}", error.what());
    } catch (...) {
      message = "uncaught exception of a type not derived from std::exception";
    }
  }
  if (mpi_is_live()) abort_job(message, 1);
  std::fprintf(stderr, "%s%s\n", rank_prefix().c_str(), message.c_str());
  std::fflush(stderr);
  std::abort();
}

/// A rank leaving the program while the job still runs (an early return after an error, exit() on a
/// bad command line, a guard skipping finalize during unwinding): the other ranks may be waiting in a
/// collective for this one, and would wait forever. End the job instead.
void exit_handler() {
  if (!state().initialized || !mpi_is_live()) return;
  abort_job("the process is exiting without xg::distributed::finalize() (after an error?); ending the job "
            "so that no other rank waits for it",
            1);
}

void install_handlers() {
  ProcessGroupState& s = state();
  if (s.handlers_installed) return;
  s.previous_terminate = std::set_terminate(terminate_handler);
  std::atexit(exit_handler);
  s.handlers_installed = true;
}

template <class Visitor>
auto visit_data(const Tensor& tensor, Visitor&& visitor) {
  // visitor(pointer to the first element) with the element type of the tensor's dtype
  switch (tensor.dtype()) {
    case Dtype::Float32: return visitor(tensor.data_ptr<float>());
    case Dtype::Float64: return visitor(tensor.data_ptr<double>());
    case Dtype::Int64: break;
  }
  return visitor(tensor.data_ptr<int64_t>());
}

void check_tensor(const Tensor& tensor, const char* op) {
  XG_CHECK(tensor.defined(), "{}: the tensor is undefined", op);
}

}  // namespace

namespace detail {

MPI_Comm communicator(const char* op) {
  XG_CHECK(state().initialized,
           "{}: xg::distributed is not initialized; call xg::distributed::init() (or use InitGuard / run()) first", op);
  return state().comm;
}

void check_mpi(int code, const char* op) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) length = 0;
  XG_ERROR("{}: MPI error {}: {}", op, code, std::string(text, static_cast<size_t>(std::max(length, 0))));
}

MPI_Datatype mpi_datatype(Dtype dtype) {
  switch (dtype) {
    case Dtype::Float32: return MPI_FLOAT;
    case Dtype::Float64: return MPI_DOUBLE;
    case Dtype::Int64: return MPI_INT64_T;
  }
  XG_ERROR("distributed: unsupported dtype {}", static_cast<int>(dtype));
}

void* raw_data(const Tensor& tensor) {
  // MPI sends one flat buffer: the tensor must be one (PyTorch's collectives require it too).
  XG_CHECK(tensor.is_contiguous(),
           "distributed: expected a contiguous tensor, got shape {} with strides {} (call contiguous(), or pass the "
           "base tensor instead of a view)",
           shape_string(tensor.shape()), shape_string(tensor.strides()));
  return visit_data(tensor, [](auto* data) -> void* { return static_cast<void*>(data); });
}

size_t element_size(Dtype dtype) { return dtype == Dtype::Float32 ? sizeof(float) : sizeof(double); }

}  // namespace detail

namespace {
/// Ranks on one machine share its cores: unless the user chose a thread count (OMP_NUM_THREADS or
/// OPENBLAS_NUM_THREADS), each rank gets cores / local ranks threads (at least 1). Otherwise every rank
/// would start a pool as wide as the machine and their spinning workers would fight (torchrun sets
/// OMP_NUM_THREADS=1 for the same reason).
void share_cores_between_local_ranks() {
  if (std::getenv("OMP_NUM_THREADS") != nullptr || std::getenv("OPENBLAS_NUM_THREADS") != nullptr) return;
  MPI_Comm local = MPI_COMM_NULL;
  if (MPI_Comm_split_type(state().comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local) != MPI_SUCCESS) return;
  int local_ranks = 1;
  MPI_Comm_size(local, &local_ranks);
  MPI_Comm_free(&local);
  const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  xg::set_num_threads(static_cast<int>(std::max<long>(1, (cpus > 0 ? cpus : 1) / std::max(local_ranks, 1))));
}
}  // namespace

void init(int* argc, char*** argv) {
  ProcessGroupState& s = state();
  if (s.initialized) return;
  int already = 0, finalized = 0;
  MPI_Initialized(&already);
  MPI_Finalized(&finalized);
  XG_CHECK(!finalized, "distributed::init: MPI was already finalized in this process; it cannot be restarted");
  if (!already) {
    // SERIALIZED: xgrad's calls may come from any one thread at a time (never concurrently).
    int provided = 0;
    detail::check_mpi(MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided), "distributed::init");
    s.started_mpi = true;
  }
  detail::check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, &s.comm), "distributed::init");
  // Return codes instead of MPI's default of aborting: failures become xg::Error naming the collective.
  detail::check_mpi(MPI_Comm_set_errhandler(s.comm, MPI_ERRORS_RETURN), "distributed::init");
  detail::check_mpi(MPI_Comm_rank(s.comm, &s.rank), "distributed::init");
  detail::check_mpi(MPI_Comm_size(s.comm, &s.world_size), "distributed::init");
  s.initialized = true;
  install_handlers();
  share_cores_between_local_ranks();
}

void finalize() {
  ProcessGroupState& s = state();
  if (!s.initialized) return;
  s.initialized = false;
  if (mpi_is_live()) {
    MPI_Comm_free(&s.comm);
    if (s.started_mpi) MPI_Finalize();
  }
  s.comm = MPI_COMM_NULL;
  s.rank = 0;
  s.world_size = 1;
}

bool is_initialized() { return state().initialized; }

int get_rank() {
  detail::communicator("get_rank");
  return state().rank;
}

int get_world_size() {
  detail::communicator("get_world_size");
  return state().world_size;
}

bool is_main_process() { return get_rank() == 0; }

void barrier() { detail::check_mpi(MPI_Barrier(detail::communicator("barrier")), "barrier"); }

void all_reduce(const Tensor& tensor, ReduceOp op) {
  MPI_Comm comm = detail::communicator("all_reduce");
  check_tensor(tensor, "all_reduce");
  const Dtype dtype = tensor.dtype();
  XG_CHECK(op != ReduceOp::kMean || is_floating(dtype),
           "all_reduce: ReduceOp::kMean needs a float32 or float64 tensor, got {} (sum, then divide yourself)", dtype);
  MPI_Op mpi_op = op == ReduceOp::kMax ? MPI_MAX : op == ReduceOp::kMin ? MPI_MIN : MPI_SUM;
  char* data = static_cast<char*>(detail::raw_data(tensor));
  const int64_t count = tensor.numel();
  const size_t item = dtype == Dtype::Float32 ? sizeof(float) : 8;
  for (int64_t start = 0; start < count; start += detail::kMaxMpiCount) {
    const int chunk = static_cast<int>(std::min(detail::kMaxMpiCount, count - start));
    detail::check_mpi(MPI_Allreduce(MPI_IN_PLACE, data + static_cast<size_t>(start) * item, chunk,
                                    detail::mpi_datatype(dtype), mpi_op, comm),
                      "all_reduce");
  }
  if (op == ReduceOp::kMean) {
    const int world = state().world_size;
    const int64_t numel = tensor.numel();  // contiguous (checked by raw_data above)
    visit_data(tensor, [world, numel](auto* data) {
      using T = std::remove_pointer_t<decltype(data)>;
      if constexpr (std::is_floating_point_v<T>) {
        for (int64_t i = 0; i < numel; ++i) data[i] /= static_cast<T>(world);
      }
    });
  }
  ++tensor.impl()->storage->version;
}

void broadcast(const Tensor& tensor, int root) {
  MPI_Comm comm = detail::communicator("broadcast");
  check_tensor(tensor, "broadcast");
  XG_CHECK(root >= 0 && root < state().world_size, "broadcast: root must be a rank in [0, {}), got {}",
           state().world_size, root);
  char* data = static_cast<char*>(detail::raw_data(tensor));
  const int64_t count = tensor.numel();
  const size_t item = tensor.dtype() == Dtype::Float32 ? sizeof(float) : 8;
  for (int64_t start = 0; start < count; start += detail::kMaxMpiCount) {
    const int chunk = static_cast<int>(std::min(detail::kMaxMpiCount, count - start));
    detail::check_mpi(
        MPI_Bcast(data + static_cast<size_t>(start) * item, chunk, detail::mpi_datatype(tensor.dtype()), root, comm),
        "broadcast");
  }
  if (state().rank != root) ++tensor.impl()->storage->version;
}

void abort_job(const std::string& message, int exit_code) {
  std::fflush(stdout);
  std::fprintf(stderr, "%serror: %s\n", rank_prefix().c_str(), message.c_str());
  std::fflush(stderr);
  if (mpi_is_live()) MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::_Exit(exit_code);  // MPI_Abort does not return; without MPI, end this process
}

int run(int& argc, char**& argv, const std::function<int()>& body) {
  try {
    init(&argc, &argv);
    const int code = body();
    finalize();
    return code;
  } catch (const std::exception& error) {
    abort_job(error.what(), 1);
  } catch (...) {
    abort_job("an exception of a type not derived from std::exception", 1);
  }
}

InitGuard::InitGuard(int& argc, char**& argv) : uncaught_at_start_(std::uncaught_exceptions()) { init(&argc, &argv); }

InitGuard::InitGuard() : uncaught_at_start_(std::uncaught_exceptions()) { init(); }

InitGuard::~InitGuard() {
  // Unwinding: another rank may be inside a collective this rank will never join, and MPI_Finalize
  // would wait for it. Leave the job to the exit handler, which aborts it once the program has
  // printed (or not) its error.
  if (std::uncaught_exceptions() > uncaught_at_start_) return;
  finalize();
}

}  // namespace xg::distributed
