// xgrad's side of the loader-throughput benchmark (see bench_data_body.hpp).
#include <xgrad/xgrad.hpp>

namespace lib = xg;
#include "bench_data_body.hpp"

int main(int argc, char** argv) { return bench_data::run("xgrad", argc, argv); }
