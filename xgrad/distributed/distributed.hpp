#pragma once
/// xg::distributed: data-parallel training over MPI (available when xgrad was built with MPI, which
/// defines XGRAD_HAS_MPI). See xgrad/distributed/README.md for running with mpirun and a hostfile.
#include "xgrad/data/distributed_sampler.hpp"
#include "xgrad/distributed/data_parallel.hpp"
#include "xgrad/distributed/process_group.hpp"
