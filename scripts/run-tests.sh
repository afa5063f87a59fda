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
for stage in $stages; do
  echo "=== stage: $stage"
  case "$stage" in
    release | asan)
      scripts/build.sh "$stage"
      dir=build; [ "$stage" = asan ] && dir=build-asan
      export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
      export LSAN_OPTIONS=suppressions=$PWD/tests/sanitizers/lsan.supp
      ctest --test-dir "$dir" --output-on-failure -j "$jobs" --timeout 300 || status=1
      ;;
    tsan)
      scripts/build.sh tsan
      # tsan.supp: races inside Debian's uninstrumented gRPC/abseil/protobuf/RocksDB.
      TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/tests/sanitizers/tsan.supp" \
        ctest --test-dir build-tsan --output-on-failure -j "$jobs" --timeout 300 -L "unit|tsan" || status=1
      ;;
    fuzz)
      scripts/build.sh fuzz codec_fuzz
      tests/fuzz/run.sh build-fuzz 60 || status=1
      ;;
    *) echo "unknown stage $stage" >&2; status=1 ;;
  esac
done
exit $status
