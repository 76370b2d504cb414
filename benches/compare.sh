#!/usr/bin/env bash
# sockbench against peer tools on loopback (issue 11's targets): builds the
# release binary, runs each measure for sockbench and a peer in interleaved
# rounds, and prints times, peak RSS, ratios and whether each target is met.
#
#   benches/compare.sh --quick            # small sizes, about a minute and a half
#   benches/compare.sh                    # the issue's sizes (4 GiB ingest, ...)
#   benches/compare.sh --help             # every flag
#
# The work is done by compare.py beside this file (Python 3, standard library);
# it stops every process it started when it ends or is interrupted.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
command -v python3 >/dev/null || { echo "compare.sh needs python3" >&2; exit 2; }
exec python3 "$here/compare.py" "$@"
