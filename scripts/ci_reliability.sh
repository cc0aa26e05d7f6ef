#!/usr/bin/env bash
# The reliability checks CI runs after the Release suite (scripts/test.sh, which also runs the soak tests,
# ctest label "soak"):
#
#   sanitize  the whole test suite built with AddressSanitizer + UndefinedBehaviorSanitizer (LeakSanitizer
#             included); any report fails the run. Examples and benchmarks are not rebuilt here.
#   fuzz      libFuzzer targets for every parser of outside bytes (idx, safetensors/checkpoints, CSV), built
#             with clang, each run for FUZZ_SECONDS from the seed corpus in tests/fuzz/corpus.
#   tsan      (not part of "all": a third full build would push CI past its time budget) the unit tests of
#             the threaded code -- data loaders with worker threads and the parallel_for pool --
#             built with ThreadSanitizer; any report fails the run. Run it after changing them.
#
#   scripts/ci_reliability.sh [sanitize|fuzz|all|tsan]      (default: all)
#
# Environment:
#   XGRAD_SANITIZE_BUILD_DIR  build tree of the sanitizer build   (default build-ci-sanitize)
#   XGRAD_FUZZ_BUILD_DIR      build tree of the fuzz build        (default build-ci-fuzz)
#   XGRAD_TSAN_BUILD_DIR      build tree of the ThreadSanitizer build (default build-ci-tsan)
#   TSAN_TESTS                Catch test spec for the tsan stage  (default "[data],[parallel]")
#   FUZZ_SECONDS              time per fuzz target                (default 60)
#   JOBS                      parallel build jobs                 (default nproc)
#   XGRAD_NATIVE              ON|OFF, as in scripts/test.sh       (default ON)
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/.." && pwd)"
cd "$repo_root"

stage="${1:-all}"
case "$stage" in
  sanitize|fuzz|all|tsan) ;;
  *) echo "usage: $0 [sanitize|fuzz|all|tsan]" >&2; exit 2 ;;
esac

sanitize_dir="${XGRAD_SANITIZE_BUILD_DIR:-build-ci-sanitize}"
fuzz_dir="${XGRAD_FUZZ_BUILD_DIR:-build-ci-fuzz}"
tsan_dir="${XGRAD_TSAN_BUILD_DIR:-build-ci-tsan}"
fuzz_seconds="${FUZZ_SECONDS:-60}"
jobs="${JOBS:-$(nproc)}"

launcher=()
if command -v ccache > /dev/null 2>&1; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi

common_configure=(
  -DXGRAD_NATIVE="${XGRAD_NATIVE:-ON}"
  -DXGRAD_BUILD_BENCH=OFF
  -DXGRAD_BUILD_EXAMPLES=OFF
  -DXGRAD_BENCH_TORCH=OFF
  "${launcher[@]}"
)

run_sanitize() {
  echo "== reliability: test suite under ASan + UBSan + LSan ($sanitize_dir)"
  bash "$script_dir/setup.sh"
  # -O2 with line tables (-g1) for readable reports; -fno-sanitize-recover makes every UBSan finding abort
  # (a test that merely prints a UBSan warning would otherwise pass).
  cmake -S . -B "$sanitize_dir" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" \
    -DCMAKE_CXX_FLAGS="-fno-sanitize-recover=undefined" \
    -DXGRAD_SANITIZE=ON \
    "${common_configure[@]}"
  cmake --build "$sanitize_dir" -j"$jobs"
  # halt_on_error / abort_on_error: a report is a failure, never a warning. detect_leaks: LeakSanitizer
  # at every test process's exit. The soak tests are not built here (ASan's quarantine makes resident
  # memory meaningless; see tests/soak/CMakeLists.txt).
  local asan_options="detect_leaks=1:abort_on_error=1:halt_on_error=1:check_initialization_order=1:strict_init_order=1:detect_stack_use_after_return=1:strict_string_checks=1"
  export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1"
  ASAN_OPTIONS="$asan_options" ctest --test-dir "$sanitize_dir" --output-on-failure -j2 -LE "soak|distributed"
  # The MPI tests: Open MPI does not free what MPI_Init allocates, so its own libraries are exempt from
  # LeakSanitizer (xgrad's allocations are not). Matching a library needs full malloc stacks
  # (fast_unwind_on_malloc=0: the fast unwinder stops at Open MPI's frames), which is slow, hence only here.
  if ctest --test-dir "$sanitize_dir" -N -L distributed | grep -q "Total Tests: [1-9]"; then
    local suppressions
    suppressions="$(cd "$sanitize_dir" && pwd)/openmpi.lsan.supp"
    printf '%s\n' "leak:libmpi.so" "leak:libopen-pal.so" "leak:libopen-rte.so" "leak:libhwloc.so" "leak:libevent" > "$suppressions"
    ASAN_OPTIONS="$asan_options:fast_unwind_on_malloc=0" LSAN_OPTIONS="suppressions=$suppressions:print_suppressions=0" \
      ctest --test-dir "$sanitize_dir" --output-on-failure -j2 -L distributed
  fi
}

run_fuzz() {
  echo "== reliability: fuzzing the loaders for ${fuzz_seconds}s each ($fuzz_dir)"
  bash "$script_dir/setup.sh" clang libclang-rt-14-dev
  local clang_cxx
  clang_cxx="$(command -v clang++ || command -v clang++-14)"
  cmake -S . -B "$fuzz_dir" \
    -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CXX_COMPILER="$clang_cxx" \
    -DXGRAD_FUZZ=ON \
    "${common_configure[@]}"
  cmake --build "$fuzz_dir" -j"$jobs" --target fuzz_idx fuzz_safetensors fuzz_csv
  local failed=()
  for target in idx safetensors csv; do
    # New inputs go to a scratch corpus in the build tree; the seeds in the repository stay untouched.
    local scratch="$fuzz_dir/corpus/$target" artifacts="$fuzz_dir/artifacts/$target"
    mkdir -p "$scratch" "$artifacts"
    local dictionary=()
    [[ -f tests/fuzz/$target.dict ]] && dictionary=(-dict="tests/fuzz/$target.dict")
    local inputs=("$scratch" "tests/fuzz/corpus/$target")
    [[ -d tests/fuzz/regressions/$target ]] && inputs+=("tests/fuzz/regressions/$target")
    echo "-- fuzz_$target"
    if ! ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" \
      "$fuzz_dir/tests/fuzz/fuzz_$target" -max_total_time="$fuzz_seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$artifacts/" "${dictionary[@]}" "${inputs[@]}"; then
      failed+=("$target")
      echo "fuzz_$target found a crash; the input is in $artifacts/ (reproduce: $fuzz_dir/tests/fuzz/fuzz_$target <file>)" >&2
    fi
  done
  if ((${#failed[@]} > 0)); then
    echo "reliability: fuzzing failed for: ${failed[*]}" >&2
    return 1
  fi
}

run_tsan() {
  echo "== reliability: ThreadSanitizer build of the unit tests"
  bash "$script_dir/setup.sh"
  # -O1 keeps reports readable and the instrumented run fast enough; OpenBLAS is not instrumented, so
  # the spec sticks to xgrad's own threads (loader workers, the parallel_for pool).
  cmake -S . -B "$tsan_dir" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" \
    -DCMAKE_CXX_FLAGS="-fsanitize=thread" \
    -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=thread" \
    -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=thread" \
    "${common_configure[@]}"
  cmake --build "$tsan_dir" -j"$jobs" --target xgrad_tests
  TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1" "$tsan_dir/tests/xgrad_tests" "${TSAN_TESTS:-[data],[parallel]}"
}

if [[ "$stage" == sanitize || "$stage" == all ]]; then run_sanitize; fi
if [[ "$stage" == tsan ]]; then run_tsan; fi
if [[ "$stage" == fuzz || "$stage" == all ]]; then run_fuzz; fi
echo "== reliability: all checks passed"
