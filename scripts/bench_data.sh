#!/usr/bin/env bash
# Loader throughput, xgrad vs libtorch, in one run: Fashion-MNIST's 60,000 training images through
# MNIST -> Normalize<> -> Stack<> -> make_data_loader<SequentialSampler> (batch 64), with 0 and 2 workers,
# both built from one source (bench/bench_data_body.hpp). The two executables alternate round by round;
# prints the median samples/s of each and xgrad/libtorch. Quote the CPU and OPENBLAS_CORETYPE (printed).
#
#   scripts/bench_data.sh [--rounds N] [--workers LIST]     (defaults: 5, "0,2")
#
# Builds in $XGRAD_BENCH_BUILD_DIR (default build), installing libtorch-dev first (scripts/setup.sh).
set -euo pipefail
script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$script_dir/.."
build="${XGRAD_BENCH_BUILD_DIR:-build}"
rounds=5
workers="0,2"
while (($#)); do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --workers) workers="$2"; shift 2 ;;
    *) echo "bench_data.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
bash "$script_dir/setup.sh" libtorch-dev  # libtorch is the peer here: without it there is nothing to compare
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DXGRAD_NATIVE="${XGRAD_NATIVE:-ON}" -DXGRAD_BUILD_BENCH=ON \
  -DXGRAD_BENCH_TORCH=ON >/dev/null
cmake --build "$build" --target bench_data bench_data_torch -j2 >/dev/null
# libtorch's MNIST reads raw idx files only: decompress the Debian package's copies once.
raw="${TMPDIR:-/tmp}/xgrad-bench-fashion-mnist"
mkdir -p "$raw"
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  [[ -s "$raw/$f" ]] || gzip -dc "/usr/share/datasets/fashion-mnist/$f.gz" >"$raw/$f"
done
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}; $(nproc) cores"
log="$(mktemp)"
for ((r = 0; r < rounds; ++r)); do
  "$build/bench/bench_data" --data "$raw" --workers "$workers" --reps 1 >>"$log"
  "$build/bench/bench_data_torch" --data "$raw" --workers "$workers" --reps 1 >>"$log"
done
/usr/bin/python3 - "$log" <<'PY'
import re, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    m = re.match(r"(\S+) workers=(\d+) .* samples_per_s=(\d+)", line)
    if m: runs.setdefault((m.group(2), m.group(1)), []).append(int(m.group(3)))
for w in sorted({k[0] for k in runs}, key=int):
    x, t = statistics.median(runs[(w, "xgrad")]), statistics.median(runs[(w, "libtorch")])
    print(f"workers={w}: xgrad {x:,.0f} samples/s, libtorch {t:,.0f} samples/s, xgrad/libtorch {x / t:.2f} "
          f"(medians of {len(runs[(w, 'xgrad')])})")
PY
rm -f "$log"
