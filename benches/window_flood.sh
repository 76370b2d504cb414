#!/usr/bin/env bash
# The window under a 1 GiB TCP echo flood, in a private Xvfb: peak RSS, time
# to count every byte after the flood, frame gaps and click-to-effect times.
#
#   benches/window_flood.sh                 # after cargo build --release
#   benches/window_flood.sh --help          # every flag
#
# The work is done by window_flood.py beside this file (Python 3, standard
# library; needs Xvfb and xdotool); it stops every process it started.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
command -v python3 >/dev/null || { echo "window_flood.sh needs python3" >&2; exit 2; }
exec python3 "$here/window_flood.py" "$@"
