// libtorch's side of the loader-throughput benchmark (see bench_data_body.hpp).
#include <torch/torch.h>

namespace lib = torch;
#include "bench_data_body.hpp"

int main(int argc, char** argv) { return bench_data::run("libtorch", argc, argv); }
