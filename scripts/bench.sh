#!/usr/bin/env bash
# Build and run xgrad's benchmarks (bench/README.md), plus the libtorch comparison when libtorch is
# available, and print a summary of medians.
#
#   scripts/bench.sh [--rounds N] [--threads "1 2"] [--quick] [--no-torch] [--cases LIST] [--no-core]
#                    [--no-train] [-- extra bench_core args]
#
#   --rounds N      process-level rounds per thread setting (default 3). In each round bench_core and
#                   bench_core_torch run back to back, alternating which goes first; every binary
#                   itself alternates its contenders repetition by repetition.
#   --threads LIST  OPENBLAS_NUM_THREADS values to run with (default "1 2").
#   --quick         20 repetitions per case instead of the defaults (still >= 20).
#   --no-torch      do not install libtorch-dev / build / run the libtorch binaries.
#   --cases LIST    bench_train cases, comma-separated (default all; `build/bench/bench_train --list`).
#   --no-core       skip bench_core / bench_core_torch (per-op overhead, tanh_bias, matmul).
#   --no-train      skip bench_train (the training cases A-G of issue 6, xgrad vs libtorch).
#
# bench_train runs once per thread setting: it alternates an xgrad and a libtorch worker process
# repetition by repetition itself, so process-level rounds are not needed there.
#
# Environment: XGRAD_NATIVE=ON|OFF (default ON, as scripts/test.sh); XGRAD_BENCH_BUILD_DIR (default
# build). OPENBLAS_CORETYPE is passed through unchanged (and printed). Logs go to
# <build dir>/bench-results/<timestamp>/.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/.." && pwd)"
cd "$repo_root"

rounds=3
threads_list="1 2"
with_torch=1
with_core=1
with_train=1
train_cases=""
bench_args=()
while (($#)); do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --threads) threads_list="$2"; shift 2 ;;
    --quick) bench_args+=(--quick); shift ;;
    --no-torch) with_torch=0; shift ;;
    --cases) train_cases="$2"; shift 2 ;;
    --no-core) with_core=0; shift ;;
    --no-train) with_train=0; shift ;;
    --) shift; bench_args+=("$@"); break ;;
    -h|--help) sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done

# ---- dependencies ---------------------------------------------------------------------------------
if ((with_torch)); then
  # libtorch-dev is large (~1 GB installed); if it cannot be installed, run without it.
  if ! bash "$script_dir/setup.sh" libtorch-dev; then
    echo "bench.sh: could not install libtorch-dev; continuing without bench_core_torch" >&2
    bash "$script_dir/setup.sh"
  fi
else
  bash "$script_dir/setup.sh"
fi

# ---- build ------------------------------------------------------------------------------------------
torch_flag=ON
((with_torch)) || torch_flag=OFF
build_dir="${XGRAD_BENCH_BUILD_DIR:-build}"
cmake -S . -B "$build_dir" \
  -DCMAKE_BUILD_TYPE=Release \
  -DXGRAD_NATIVE="${XGRAD_NATIVE:-ON}" \
  -DXGRAD_BUILD_BENCH=ON \
  -DXGRAD_BENCH_TORCH="$torch_flag" >/dev/null

targets=()
((with_core)) && targets+=(bench_core)
((with_train)) && targets+=(bench_train)
have_torch=0
if ((with_torch)); then
  # (capture first: `cmake ... | grep -q` would fail under pipefail when grep exits early)
  target_list="$(cmake --build "$build_dir" --target help 2>/dev/null || true)"
  if grep -qw bench_core_torch <<<"$target_list"; then
    have_torch=1
    ((with_core)) && targets+=(bench_core_torch)
    ((with_train)) && targets+=(bench_train_torch)
  fi
fi
((${#targets[@]})) || { echo "bench.sh: nothing to run (--no-core and --no-train)" >&2; exit 2; }
cmake --build "$build_dir" -j"$(nproc)" --target "${targets[@]}"

binaries=()
if ((with_core)); then
  binaries+=("$build_dir/bench/bench_core")
  ((have_torch)) && binaries+=("$build_dir/bench/bench_core_torch")
fi
if ((with_torch)) && ((!have_torch)); then
  echo "bench.sh: libtorch was not found by CMake; running the xgrad side only" >&2
fi

# ---- run --------------------------------------------------------------------------------------------
stamp="$(date +%Y%m%d-%H%M%S)"
out_dir="$build_dir/bench-results/$stamp"
mkdir -p "$out_dir"
results="$out_dir/results.txt"   # "<threads> <round> RESULT ..." lines
: >"$results"

echo "bench.sh: $(date '+%Y-%m-%d %H:%M:%S %Z'); cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); nproc: $(nproc)"
echo "bench.sh: OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)}; thread settings: $threads_list; rounds: $rounds; loadavg: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "bench.sh: logs in $out_dir"
if git -C "$repo_root" rev-parse --git-dir >/dev/null 2>&1; then
  dirty="$(git -C "$repo_root" status --porcelain -- xgrad 2>/dev/null | wc -l)"
  echo "bench.sh: xgrad at git $(git -C "$repo_root" rev-parse --short HEAD)${dirty:+ ($dirty uncommitted change(s) under xgrad/)}"
fi
load1="$(cut -d' ' -f1 /proc/loadavg)"
if awk -v l="$load1" -v n="$(nproc)" 'BEGIN { exit !(l > 0.5 * n) }'; then
  echo "bench.sh: WARNING: 1-minute load average $load1 on $(nproc) cores: other processes are running," \
       "timings will be inflated (each binary prints the load average at its start)" >&2
fi

for threads in $threads_list; do
  ((${#binaries[@]})) || break
  for ((round = 1; round <= rounds; ++round)); do
    order=("${binaries[@]}")
    if ((round % 2 == 0)) && ((${#binaries[@]} > 1)); then
      order=("${binaries[1]}" "${binaries[0]}")   # alternate which binary goes first
    fi
    for bin in "${order[@]}"; do
      name="$(basename "$bin")"
      log="$out_dir/${name}.threads${threads}.round${round}.log"
      echo "== OPENBLAS_NUM_THREADS=$threads round $round/$rounds: $name"
      OPENBLAS_NUM_THREADS="$threads" "$bin" "${bench_args[@]}" >"$log" 2>&1 || {
        echo "bench.sh: $name failed (see $log)" >&2
        tail -n 20 "$log" >&2
        exit 1
      }
      # The binary's own summary table.
      sed -n '/^== summary/,$p' "$log"
      grep '^RESULT ' "$log" | sed "s/^/$threads $round /" >>"$results"
    done
  done
done

# ---- bench_train: the training cases, xgrad and libtorch workers alternating ----------------------
train_args=()
[[ -n "$train_cases" ]] && train_args+=(--cases "$train_cases")
for a in "${bench_args[@]}"; do [[ "$a" == --quick ]] && train_args+=(--quick); done
((have_torch)) || train_args+=(--no-torch)
if ((with_train)); then
  for threads in $threads_list; do
    log="$out_dir/bench_train.threads${threads}.log"
    echo "== OPENBLAS_NUM_THREADS=$threads: bench_train ${train_args[*]}"
    OPENBLAS_NUM_THREADS="$threads" "$build_dir/bench/bench_train" --threads "$threads" "${train_args[@]}" >"$log" 2>&1 || {
      echo "bench.sh: bench_train failed (see $log)" >&2
      tail -n 20 "$log" >&2
      exit 1
    }
    sed -n '/^== summary/,$p' "$log"
    grep '^RESULT ' "$log" | sed "s/^/$threads 1 /" >>"$results"
  done
fi

# ---- summary: medians over rounds (each value is itself a median of >= 20 repetitions) --------------
echo
echo "== bench.sh summary: median over $rounds round(s) of each binary's medians =="
awk '
function med(list,    n, a, i, j, t) {
  n = split(list, a, " ")
  for (i = 2; i <= n; ++i) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; --j) a[j + 1] = a[j]; a[j + 1] = t }
  return (n % 2) ? a[(n + 1) / 2] + 0 : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
  thr = $1; rnd = $2
  for (i = 4; i <= NF; ++i) { split($i, kv, "="); f[kv[1]] = kv[2] }
  key = thr SUBSEP f["bench"] SUBSEP f["case"] SUBSEP f["metric"]
  vals[key] = vals[key] " " f["value"]; unit[key] = f["unit"]
  per_round[thr SUBSEP rnd SUBSEP f["bench"] SUBSEP f["case"] SUBSEP f["metric"]] = f["value"]
  best[key] = f["best"]
  if (f["bench"] == "bench_train") {
    if (!((thr SUBSEP f["case"]) in train_seen)) train_seen[thr SUBSEP f["case"]] = 1
    if (!(f["case"] in case_index)) { case_index[f["case"]] = ++ncase; case_order[ncase] = f["case"] }
  }
  if (!(thr in seen_thr)) { seen_thr[thr] = 1; thr_order[++nthr] = thr }
  rounds_of[thr] = (rnd > rounds_of[thr]) ? rnd : rounds_of[thr]
}
function get(thr, b, c, m) { k = thr SUBSEP b SUBSEP c SUBSEP m; return (k in vals) ? med(vals[k]) : "" }
function paired(thr, b1, m1, b2, m2, c,    r, list, x, y) {
  list = ""
  for (r = 1; r <= rounds_of[thr]; ++r) {
    x = per_round[thr SUBSEP r SUBSEP b1 SUBSEP c SUBSEP m1]; y = per_round[thr SUBSEP r SUBSEP b2 SUBSEP c SUBSEP m2]
    if (x != "" && y != "" && y + 0 != 0) list = list " " (x / y)
  }
  return list == "" ? "" : med(list)
}
END {
  for (t = 1; t <= nthr; ++t) {
    thr = thr_order[t]
    printf "-- OPENBLAS_NUM_THREADS=%s --%s\n", thr, (thr > 1 ? " (OpenBLAS starts worker threads at load: the processes are multi-threaded, which alone slows xgrad'"'"'s overhead case; see bench/README.md)" : "")
    o = get(thr, "bench_core", "overhead", "us_per_op_fwd_bwd")
    if (o != "") {
      printf "overhead   xgrad fwd+bwd %.3f us/op (fwd recording %.3f, bwd %.3f, no-grad fwd %.3f)  target <= 1 us/op: %s\n", \
        o, get(thr, "bench_core", "overhead", "us_per_op_fwd_recording"), get(thr, "bench_core", "overhead", "us_per_op_bwd"), \
        get(thr, "bench_core", "overhead", "us_per_op_fwd_nograd"), (o <= 1.0 ? "PASS" : "MISS")
      to = get(thr, "bench_core_torch", "overhead", "us_per_op_fwd_bwd")
      if (to != "")
        printf "           libtorch fwd+bwd %.3f us/op (no-grad fwd %.3f)  xgrad/libtorch = %.2f (paired by round)\n", \
          to, get(thr, "bench_core_torch", "overhead", "us_per_op_fwd_nograd"), \
          paired(thr, "bench_core", "us_per_op_fwd_bwd", "bench_core_torch", "us_per_op_fwd_bwd", "overhead")
    }
    x = get(thr, "bench_core", "tanh_bias", "us_xgrad")
    if (x != "") {
      r = get(thr, "bench_core", "tanh_bias", "ratio_xgrad_over_fastest_ref")
      printf "tanh_bias  xgrad %.1f us; plain %.1f, plain -ffast-math %.1f, xsimd %.1f us; xgrad/fastest ref %.2f (xgrad/best of plain,xsimd %.2f)  target <= 1.5: %s\n", \
        x, get(thr, "bench_core", "tanh_bias", "us_plain"), get(thr, "bench_core", "tanh_bias", "us_plain_fastmath"), \
        get(thr, "bench_core", "tanh_bias", "us_xsimd"), r, get(thr, "bench_core", "tanh_bias", "ratio_xgrad_over_best_plain_or_xsimd"), \
        (r <= 1.5 ? "PASS" : "MISS")
      tt = get(thr, "bench_core_torch", "tanh_bias", "us_torch")
      if (tt != "") printf "           libtorch %.1f us (libtorch/fastest ref %.2f)\n", tt, get(thr, "bench_core_torch", "tanh_bias", "ratio_torch_over_fastest_ref")
    }
    g = get(thr, "bench_core", "matmul", "gflops_xgrad")
    if (g != "") {
      fr = get(thr, "bench_core", "matmul", "fraction_xgrad_over_sgemm")
      printf "matmul     xgrad %.1f GFLOP/s, sgemm %.1f GFLOP/s, xgrad/sgemm %.1f %%  target >= 90 %%: %s\n", \
        g, get(thr, "bench_core", "matmul", "gflops_sgemm"), 100 * fr, (fr >= 0.9 ? "PASS" : "MISS")
      tg = get(thr, "bench_core_torch", "matmul", "gflops_torch")
      if (tg != "") printf "           libtorch %.1f GFLOP/s (libtorch/sgemm %.1f %%)\n", tg, 100 * get(thr, "bench_core_torch", "matmul", "fraction_torch_over_sgemm")
    }
    ntrain = 0
    for (tk in train_seen) { split(tk, kk, SUBSEP); if (kk[1] == thr) ntrain++ }
    if (ntrain > 0) {
      printf "%-12s | %-24s | %-24s | %-8s | %-8s | %-19s | %s\n", "train case", "xgrad median (min)", "libtorch median (min)", "x/torch", "cpu x/t", "peak MB xgrad/torch", "time/mem"
      for (ci = 1; ci <= ncase; ++ci) {
        c = case_order[ci]; if (!((thr SUBSEP c) in train_seen)) continue
        u = (get(thr, "bench_train", c, "ms_xgrad") != "") ? "ms" : "s"
        xm = get(thr, "bench_train", c, u "_xgrad"); tm = get(thr, "bench_train", c, u "_torch")
        r = get(thr, "bench_train", c, "ratio_time"); rc = get(thr, "bench_train", c, "ratio_cpu")
        mx = get(thr, "bench_train", c, "peak_mb_xgrad"); mt = get(thr, "bench_train", c, "peak_mb_torch")
        printf "%-12s | %9.3f %-2s (%9.3f) | ", c, xm, u, best[thr SUBSEP "bench_train" SUBSEP c SUBSEP u "_xgrad"]
        if (tm != "") printf "%9.3f %-2s (%9.3f) | %-8.3f | %-8.3f | %7.1f / %-9.1f | %s/%s\n", tm, u, best[thr SUBSEP "bench_train" SUBSEP c SUBSEP u "_torch"], r, rc, mx, mt, (r <= 1.0 ? "PASS" : "MISS"), (mx <= mt ? "PASS" : "MISS")
        else printf "%-24s | %-8s | %-8s | %7.1f / %-9s | -\n", "-", "-", "-", mx, "-"
      }
    }
  }
}' "$results" | tee "$out_dir/summary.txt"
