#!/usr/bin/env bash
# Installs dependencies if missing, then builds and runs every test suite:
#   1. release build: unit + integration tests (ctest)
#   2. ASan+UBSan build: the same tests
#   3. TSan build: unit tests and the concurrency-heavy integration tests (label tsan)
#   4. libFuzzer: the codec fuzzer for a bounded time on its seed corpus
# MESHMQ_TEST_STAGES="release asan" limits the stages.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
stages=${MESHMQ_TEST_STAGES:-release asan tsan fuzz}
jobs=$(nproc)
status=0
failed=()   # stages that failed
reports=()  # stage=junit.xml of each ctest stage, for the summary at the end
for stage in $stages; do
  echo "=== stage: $stage"
  case "$stage" in
    release | asan)
      scripts/build.sh "$stage"
      dir=build; [ "$stage" = asan ] && dir=build-asan
      export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
      export LSAN_OPTIONS=suppressions=$PWD/tests/sanitizers/lsan.supp
      reports+=("$stage=$PWD/$dir/ctest-junit.xml")
      ctest --test-dir "$dir" --output-on-failure -j "$jobs" --timeout 300 \
        --output-junit "$PWD/$dir/ctest-junit.xml" || { status=1; failed+=("$stage"); }
      ;;
    tsan)
      scripts/build.sh tsan
      reports+=("$stage=$PWD/build-tsan/ctest-junit.xml")
      # tsan.supp: races inside Debian's uninstrumented gRPC/abseil/protobuf/RocksDB.
      TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/tests/sanitizers/tsan.supp" \
        ctest --test-dir build-tsan --output-on-failure -j "$jobs" --timeout 300 -L "unit|tsan" \
        --output-junit "$PWD/build-tsan/ctest-junit.xml" || { status=1; failed+=("$stage"); }
      ;;
    fuzz)
      scripts/build.sh fuzz codec_fuzz
      tests/fuzz/run.sh build-fuzz 60 || { status=1; failed+=("$stage"); }
      ;;
    *) echo "unknown stage $stage" >&2; status=1; failed+=("$stage") ;;
  esac
done
# CI keeps only the end of the output: repeat what failed there.
if [ "$status" -ne 0 ]; then
  echo "=== failed stages: ${failed[*]}"
  /usr/bin/python3 scripts/failure-summary.py "${reports[@]}"
fi
exit $status
