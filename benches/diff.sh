#!/bin/bash
# Differential backups against full ones, side by side in one run (SPEC section 6):
#   benches/diff.sh [--sizes 35,1024] [--runs 5] [--baseline OTHER_BUILD/dbbackup]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin dbbackup --example make_results_db
exec python3 benches/diff.py "$@"
