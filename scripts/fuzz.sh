#!/usr/bin/env bash
# Run every fuzz target in tests/fuzz (cargo-fuzz, libFuzzer, on the nightly toolchain) for
# SECONDS each (default 60), then print one line per target: executions, seconds, executions
# per second, findings. Exits non-zero when any target found a crash, a hang or a leak; the
# input that did it is in tests/fuzz/artifacts/TARGET/, and
# `cargo +nightly fuzz run --fuzz-dir tests/fuzz TARGET FILE` replays it.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Installs the nightly toolchain and cargo-fuzz when missing. The first build compiles
# sselab and its dependencies with the sanitizer (about 12 minutes on 2 busy cores).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
if ! [[ $seconds =~ ^[1-9][0-9]*$ ]]; then
  echo "scripts/fuzz.sh: SECONDS must be a whole number above 0, got '$seconds'" >&2
  exit 2
fi
shift $(($# > 0 ? 1 : 0))
fuzz_dir=tests/fuzz
# An input that runs longer than this is reported as a hang (libFuzzer's default is 20 min).
per_input_timeout=10

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "==> installing the nightly toolchain (cargo-fuzz needs it for the sanitizers)"
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list --fuzz-dir "$fuzz_dir")
fi

echo "==> the oracles the targets judge by (tests/fuzz/src/lib.rs)"
# In the main target dir, beside what scripts/test.sh checks there.
CARGO_TARGET_DIR=target cargo test --quiet --manifest-path "$fuzz_dir/Cargo.toml" --lib

echo "==> cargo +nightly fuzz build"
cargo +nightly fuzz build --fuzz-dir "$fuzz_dir"

logs=$fuzz_dir/target/logs
mkdir -p "$logs"
findings_of() { find "$1" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | sort; }

status=0
results=()
for target in "${targets[@]}"; do
  echo "==> $target for ${seconds} s"
  artifacts=$fuzz_dir/artifacts/$target
  mkdir -p "$fuzz_dir/corpus/$target" "$artifacts"
  before=$(findings_of "$artifacts")
  log=$logs/$target.log
  started=$(date +%s)
  run_status=0
  cargo +nightly fuzz run --fuzz-dir "$fuzz_dir" "$target" -- \
    -max_total_time="$seconds" -timeout="$per_input_timeout" -print_final_stats=1 \
    >"$log" 2>&1 || run_status=$?
  elapsed=$(($(date +%s) - started))
  executions=$(awk '/^stat::number_of_executed_units:/ { print $2 }' "$log" | tail -n 1)
  new=$(comm -13 <(echo "$before") <(findings_of "$artifacts") | sed '/^$/d')
  found=$(sed '/^$/d' <<<"$new" | wc -l)
  if [ "$run_status" -ne 0 ] || [ "$found" -gt 0 ]; then
    status=1
    echo "$target FAILED (exit $run_status); the end of $log:" >&2
    tail -n 40 "$log" >&2
    [ -z "$new" ] || sed "s/^/found: /" <<<"$new" >&2
  fi
  rate=$(( ${executions:-0} / (elapsed > 0 ? elapsed : 1) ))
  results+=("$(printf '%-16s %12s %8s %10s %9s' "$target" "${executions:-?}" "$elapsed" "$rate" "$found")")
done

printf '\n%-16s %12s %8s %10s %9s\n' target executions seconds "execs/s" findings
printf '%s\n' "${results[@]}"
[ "$status" -eq 0 ] && echo "no findings" || echo "findings above: each becomes a regression test in the main suite" >&2
exit "$status"
