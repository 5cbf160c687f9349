#!/usr/bin/env bash
# Runs every test project (unit tests, then end-to-end tests against a real hulld) and ends with
# one line: "N passed, N failed, N skipped", summed over all projects.
# Usage: hack/test.sh [--no-build] [extra dotnet test args...]
set -uo pipefail
cd "$(dirname "$0")/.."

build=1
if [[ "${1:-}" == "--no-build" ]]; then build=0; shift; fi
configuration="${HULL_CONFIGURATION:-Release}"

if (( build )); then
  dotnet build Hull.sln -c "$configuration" --nologo -v quiet || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }
fi

projects=(test/*/*.csproj e2e/*/*.csproj)
passed=0 failed=0 skipped=0 broken=0
logdir="$(mktemp -d)"
for project in "${projects[@]}"; do
  name="$(basename "$project" .csproj)"
  echo "=== $name"
  # blame-hang turns a hung test into a failure with a dump instead of a stuck CI run.
  dotnet test "$project" -c "$configuration" --no-build --nologo \
    --blame-hang-timeout 5m "$@" 2>&1 | tee "$logdir/$name.log" |
    # Each failure with its message (at most 15 lines) and the top of its stack trace (6 lines), so a CI log says why
    # and where.
    awk '/^[[:space:]]+(Failed|Skipped) |^(Passed|Failed)!/ { print; next }
         /Error Message:/ { msg = 1; n = 0; trace = 0 }
         /Stack Trace:/ { msg = 0; trace = 1; k = 0 }
         msg && n++ < 15 { print }
         trace && k++ < 7 { print }' || true
  summary="$(grep -E '^(Passed|Failed)! +- ' "$logdir/$name.log" | tail -1)"
  if [[ -z "$summary" ]]; then
    echo "$name: no test summary (crash or build problem); see above"
    broken=$((broken + 1))
    tail -40 "$logdir/$name.log"
    continue
  fi
  p=$(sed -E 's/.*Passed: *([0-9]+).*/\1/' <<<"$summary")
  f=$(sed -E 's/.*Failed: *([0-9]+), Passed.*/\1/' <<<"$summary")
  s=$(sed -E 's/.*Skipped: *([0-9]+).*/\1/' <<<"$summary")
  passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
done
rm -rf "$logdir"

failed=$((failed + broken))
if (( skipped > 0 )); then
  echo "$passed passed, $failed failed, $skipped skipped"
else
  echo "$passed passed, $failed failed"
fi
(( failed == 0 ))
