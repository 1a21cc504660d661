#!/usr/bin/env bash
# Runs every fuzz target for SECONDS seconds each (default 60) and prints, per target, the
# executions run and whether anything was found. Installs cargo-fuzz if it is missing.
#
# Only the stable toolchain exists on the project's machines; cargo-fuzz needs nightly-only
# flags (-Zsanitizer), which RUSTC_BOOTSTRAP=1 enables on stable. That is what this script does.
#
#   fuzz/run.sh 30          # every target, 30 s each
#   JOBS=2 fuzz/run.sh 600  # two processes per target
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
jobs=${JOBS:-1}
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
status=0
for target in $(cargo fuzz list); do
  log=$(mktemp)
  if cargo fuzz run "$target" --jobs "$jobs" -- -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 >"$log" 2>&1; then
    result="no crash, panic, hang or out-of-memory"
  else
    result="FOUND something: see fuzz/artifacts/$target/"
    status=1
  fi
  shopt -s nullglob
  runs=$({ grep -ho 'Done [0-9]* runs' "$log" fuzz-*.log || true; } | awk '{s += $2} END {print s + 0}')
  printf '%-20s %12s executions in %ss: %s\n' "$target" "$runs" "$seconds" "$result"
  [ "$status" -eq 0 ] || tail -40 "$log"
  rm -f "$log" fuzz-*.log
done
exit "$status"
