// Catch2 v2 main. All other tests/test_*.cpp files are compiled into the same
// xgrad_tests executable (see tests/CMakeLists.txt).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
