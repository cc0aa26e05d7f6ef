#!/usr/bin/env bash
# The main job: set up (scripts/setup.sh), build xgrad (Release, build/), and train the Fashion-MNIST
# CNN (examples/fashion_mnist_cnn) with its default settings: >= 90% test accuracy in under 5 minutes
# on 2 cores. Arguments go to the program:
#
#   scripts/run.sh                          # the default run
#   scripts/run.sh --help                   # every option
#   scripts/run.sh --epochs 15 --augment    # the longer run (>= 92.5%)
#   scripts/run.sh --resume                 # continue an interrupted run from its checkpoint
#
# Outputs (metrics.csv, curves.png, checkpoint.safetensors, model.safetensors) go to
# runs/fashion_mnist_cnn/ unless --out-dir says otherwise.
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
cmake --build build -j"$(nproc)" --target fashion_mnist_cnn

exec build/examples/fashion_mnist_cnn "$@"
