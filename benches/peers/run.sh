#!/usr/bin/env bash
# Warden side by side with Cedar, Rego (regorus) and Casbin: equivalence first, then timing
# and peak RSS; the markdown report goes to stdout (progress to stderr).
#
#   benches/peers/run.sh                 # everything (several minutes on 2 cores)
#   benches/peers/run.sh equiv           # equivalence only
#   benches/peers/run.sh grants          # the photo-sharing grants, every style and size, with RSS
#   benches/peers/run.sh --only todo     # one model (no RSS table)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [ ! -x /usr/bin/time ]; then
  echo "note: /usr/bin/time is missing (Debian: apt-get install -y time); the peak-RSS table is skipped" >&2
fi
exec cargo run --release --quiet --manifest-path "$here/Cargo.toml" -- "$@"
