#pragma once
/// Internal to xg::distributed: xgrad's communicator and MPI error checking (includes <mpi.h>).
#include <mpi.h>

#include <cstdint>

#include "xgrad/autograd/tensor.hpp"

namespace xg::distributed::detail {

/// xgrad's duplicate of MPI_COMM_WORLD; `op` names the caller in the error when init() was not called.
MPI_Comm communicator(const char* op);
/// Throws xg::Error "<op>: MPI error: <MPI's description>" unless code is MPI_SUCCESS.
void check_mpi(int code, const char* op);
/// MPI_FLOAT, MPI_DOUBLE or MPI_INT64_T.
MPI_Datatype mpi_datatype(Dtype dtype);
/// The first element of a tensor's data, whatever its dtype.
void* raw_data(const Tensor& tensor);
/// Size in bytes of one element of dtype.
size_t element_size(Dtype dtype);
/// Largest element count handed to one MPI call (MPI counts are int).
constexpr int64_t kMaxMpiCount = int64_t{1} << 30;

}  // namespace xg::distributed::detail
