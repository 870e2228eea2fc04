#!/bin/bash
# One command for the benchmark: build the release binary and the data generator,
# then compare.
#   benches/compare.sh [--sizes 35,1024] [--runs 5]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin dbbackup --example make_results_db
exec python3 benches/compare.py "$@"
