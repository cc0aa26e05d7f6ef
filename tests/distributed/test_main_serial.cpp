// Catch2 main of the tests that need no MPI (DistributedSampler, the DataLoader's sampler hook).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
