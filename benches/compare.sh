#!/bin/bash
# One command for the benchmark: build the release binary, then compare.
#   benches/compare.sh [--sizes 35,1024] [--runs 5]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
exec python3 benches/compare.py "$@"
