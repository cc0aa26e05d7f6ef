#pragma once
/// The one global generator behind rand/randn/randint/randperm, dropout and shuffling.
#include <cstdint>
#include <mutex>
#include <random>
#include <string>

namespace xg::random {

/// The generator; hold lock_generator() while drawing from it.
std::mt19937_64& generator();
std::unique_lock<std::mutex> lock_generator();
void seed(uint64_t seed);
/// The full generator state as text (for checkpoints), and its restoration.
std::string get_state();
void set_state(const std::string& state);

}  // namespace xg::random
