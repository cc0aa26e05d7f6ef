#!/usr/bin/env bash
# Build xgrad (Release, build/) and run the demo example.
#
#   scripts/run.sh [demo_fit args...]
#
# Environment: XGRAD_NATIVE=ON|OFF (default ON), same as scripts/test.sh so the
# two scripts share build/ without forcing a reconfigure/rebuild.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/.." && pwd)"
cd "$repo_root"

bash "$script_dir/setup.sh"

cmake -S . -B build \
  -DCMAKE_BUILD_TYPE=Release \
  -DXGRAD_NATIVE="${XGRAD_NATIVE:-ON}" \
  -DXGRAD_BUILD_EXAMPLES=ON >/dev/null
cmake --build build -j"$(nproc)" --target demo_fit

exec build/examples/demo_fit "$@"
