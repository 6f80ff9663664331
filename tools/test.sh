#!/usr/bin/env bash
# The test command (README): installs what the tests need, then builds twice
# (normal, and ASan+UBSan) and runs the whole ctest suite on each build.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh test
jobs=$(nproc)
echo "== format (clang-format, .clang-format) =="
find common node agent discovery lb tools tests -name '*.[ch]' -print0 |
  xargs -0 clang-format --dry-run --Werror
for variant in release asan; do
  dir=build-test-$variant
  flags="-DCMAKE_BUILD_TYPE=RelWithDebInfo"
  [ "$variant" = asan ] && flags="-DCMAKE_BUILD_TYPE=Debug -DWARREN_SANITIZE=ON"
  echo "== $variant build =="
  cmake -S . -B "$dir" $flags >/dev/null
  cmake --build "$dir" -j"$jobs"
  echo "== $variant tests =="
  # Sanitizer runs abort on the first report, so a leak or UB fails its test.
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir "$dir" --output-on-failure -j"$jobs"
done
