#!/usr/bin/env bash
# Runs the codec fuzzer for a bounded time: tests/fuzz/run.sh BUILD_DIR SECONDS
# The seed corpus is copied to a scratch directory so that inputs the fuzzer finds do not pollute
# tests/fuzz/corpus/codec. A crashing input is saved under tests/fuzz/artifacts/ (git-ignored) and
# its path printed; add it to the seed corpus once the bug is fixed.
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 BUILD_DIR [SECONDS]" >&2
  exit 2
fi
build=$1
seconds=${2:-60}
here=$(cd "$(dirname "$0")" && pwd)
fuzzer=$build/tests/fuzz/codec_fuzz
if [ ! -x "$fuzzer" ]; then
  echo "fuzz: $fuzzer not found; build it with scripts/build.sh fuzz" >&2
  exit 2
fi

artifacts=$here/artifacts
mkdir -p "$artifacts"
scratch=$(mktemp -d "${TMPDIR:-/tmp}/meshmq-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
mkdir "$scratch/corpus"
cp "$here"/corpus/codec/* "$scratch/corpus/"

echo "fuzz: codec_fuzz for ${seconds}s on $(ls "$scratch/corpus" | wc -l) seed inputs"
status=0
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
  "$fuzzer" "$scratch/corpus" \
  -dict="$here/codec.dict" \
  -max_total_time="$seconds" \
  -rss_limit_mb=2048 \
  -timeout=25 \
  -max_len=4096 \
  -print_final_stats=1 \
  -artifact_prefix="$artifacts/" \
  >"$scratch/log" 2>&1 || status=$?

if [ "$status" -ne 0 ]; then
  tail -n 60 "$scratch/log" >&2
  saved=$(grep -o "Test unit written to .*" "$scratch/log" | sed 's/Test unit written to //' || true)
  echo "fuzz: FAILED (exit $status)" >&2
  if [ -n "$saved" ]; then
    echo "fuzz: crashing input saved to: $saved" >&2
    echo "fuzz: reproduce with: $fuzzer $saved" >&2
  fi
  exit 1
fi
grep -E "^(#[0-9]+.*DONE|Done|stat::number_of_executed_units|stat::peak_rss_mb)" "$scratch/log" || true
echo "fuzz: no crash in ${seconds}s"
