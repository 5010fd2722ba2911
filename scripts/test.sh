#!/bin/sh
# The whole test suite from a fresh machine: installs what it needs,
# builds with -Werror, runs every test, then runs them again under
# AddressSanitizer and UndefinedBehaviorSanitizer, and fuzzes each parser.
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh
make -j"$(nproc)" >/dev/null
make test
make asan
# every parser's fuzzer, briefly (crashers kept under tests/fuzz/regressions)
make fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-20}"
