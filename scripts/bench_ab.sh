#!/usr/bin/env bash
# A/B benchmark of two revisions of xgrad on this machine, in one run: builds REV in a git worktree,
# then runs bench_core's per-op overhead case and bench_train's training cases for REV ("old") and the
# current tree ("new"), alternating old and new round by round, and prints medians and new/old ratios.
#
#   scripts/bench_ab.sh REV [--rounds N] [--train-rounds N] [--threads "1 2"] [--no-train] [--quick-overhead]
#
#   REV            the revision to compare against (e.g. a commit before a change)
#   --rounds N     bench_core overhead rounds per contender and thread setting (default 11)
#   --train-rounds N  bench_train rounds per contender (default 3; bench_train --quick --no-torch)
#   --threads LIST OPENBLAS_NUM_THREADS settings (default "1 2")
#   --no-train     only the per-op overhead
#   --quick-overhead  bench_core --quick for the overhead rounds (faster, much noisier; the default
#                  runs bench_core's full overhead case)
#
# The current tree is built in $XGRAD_BENCH_BUILD_DIR (default build); REV in .bench-ab/<rev>
# (a worktree with its own build directory; remove it with `git worktree remove`). Quote the CPU and
# OPENBLAS_CORETYPE (both printed) with any figure.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/.." && pwd)"
cd "$repo_root"

(($#)) || { sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2; }
rev="$1"
shift
rounds=11
train_rounds=3
threads_list="1 2"
with_train=1
overhead_args=()
while (($#)); do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --train-rounds) train_rounds="$2"; shift 2 ;;
    --threads) threads_list="$2"; shift 2 ;;
    --no-train) with_train=0; shift ;;
    --quick-overhead) overhead_args=(--quick); shift ;;
    *) echo "bench_ab.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

bash "$script_dir/setup.sh"
new_build="${XGRAD_BENCH_BUILD_DIR:-build}"
old_sha="$(git rev-parse --short "$rev")"
old_tree="$repo_root/.bench-ab/$old_sha"
if [[ ! -d "$old_tree" ]]; then
  git worktree add --detach "$old_tree" "$old_sha" >/dev/null
fi
configure() {  # source dir, build dir; the compiler's output goes to <build dir>/bench_ab-build.log
  mkdir -p "$2"
  if ! { cmake -S "$1" -B "$2" -DCMAKE_BUILD_TYPE=Release -DXGRAD_NATIVE="${XGRAD_NATIVE:-ON}" -DXGRAD_BUILD_BENCH=ON &&
         cmake --build "$2" --target bench_core bench_train -j"$(nproc)"; } >"$2/bench_ab-build.log" 2>&1; then
    tail -30 "$2/bench_ab-build.log" >&2
    echo "bench_ab.sh: building $1 failed (log: $2/bench_ab-build.log)" >&2
    exit 1
  fi
}
echo "bench_ab: building $old_sha and the current tree"
configure "$old_tree" "$old_tree/build"
configure "$repo_root" "$new_build"

echo "CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1); OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"
echo "old: $old_sha   new: $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo ' (with uncommitted changes)')"
results="$(mktemp)"
trap 'rm -f "$results"' EXIT

for threads in $threads_list; do
  for ((i = 0; i < rounds; ++i)); do
    for side in old new; do
      bin="$old_tree/build/bench/bench_core"
      [[ $side == new ]] && bin="$new_build/bench/bench_core"
      value="$(OPENBLAS_NUM_THREADS=$threads "$bin" --only overhead ${overhead_args[@]+"${overhead_args[@]}"} 2>&1 |
        sed -n 's/.*metric=us_per_op_fwd_bwd value=\([0-9.e+-]*\).*/\1/p')"
      echo "overhead_us_per_op threads=$threads $side $value" >>"$results"
    done
  done
  if ((with_train)); then
    for ((i = 0; i < train_rounds; ++i)); do
      for side in old new; do
        bin="$old_tree/build/bench/bench_train"
        [[ $side == new ]] && bin="$new_build/bench/bench_train"
        OPENBLAS_NUM_THREADS=$threads "$bin" --quick --no-torch --threads "$threads" 2>&1 |
          sed -n "s/.*case=\([A-Za-z_0-9]*\) metric=\(m\{0,1\}s\)_xgrad value=\([0-9.e+-]*\).*/\1_\2 threads=$threads $side \3/p" >>"$results"
      done
    done
  fi
done

# Medians per (case, threads, side), then the ratio.
printf '%-28s %-10s %12s %12s %8s\n' case threads "old median" "new median" new/old
for key in $(awk '{print $1 "|" $2}' "$results" | sort -u); do
  name="${key%%|*}"
  threads="${key##*|}"
  median() { awk -v n="$name" -v t="$threads" -v s="$1" '$1 == n && $2 == t && $3 == s {print $4}' "$results" | sort -g |
    awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
  old="$(median old)"
  new="$(median new)"
  printf '%-28s %-10s %12.4f %12.4f %8.3f\n' "$name" "$threads" "$old" "$new" "$(awk -v a="$new" -v b="$old" 'BEGIN {print a / b}')"
done
