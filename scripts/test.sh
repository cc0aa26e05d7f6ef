#!/usr/bin/env bash
# Configure, build and test xgrad in build/ (Release).
#
#   scripts/test.sh [extra cmake configure args...]
#
# Environment: XGRAD_NATIVE=ON|OFF (default ON) -> -DXGRAD_NATIVE.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/.." && pwd)"
cd "$repo_root"

bash "$script_dir/setup.sh"

cmake -S . -B build \
  -DCMAKE_BUILD_TYPE=Release \
  -DXGRAD_NATIVE="${XGRAD_NATIVE:-ON}" \
  -DXGRAD_BENCH_TORCH=OFF \
  "$@"
cmake --build build -j"$(nproc)"
ctest --test-dir build --output-on-failure -j2
