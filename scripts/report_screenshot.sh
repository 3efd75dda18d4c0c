#!/usr/bin/env bash
# Screenshot of the top of a drift report (title, synthetic-data banner, findings in words with
# their intervals, summary) for the docs, taken by Debian's headless chromium, then reduced to a
# 256-colour PNG so that it stays under 300 kB.
#
#   bash scripts/report_screenshot.sh out/synthesis/report.html [docs/images/report.png] [1280,1600]
#
# Needs chromium (`apt-get install -y chromium`, as root; installed here when missing and run as
# root) and Pillow (an ispkit dependency).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 1 ]; then
    echo "usage: $0 REPORT.html [OUT.png] [WIDTH,HEIGHT]" >&2
    exit 2
fi
report=$(realpath "$1")
out=$(realpath -m "${2:-docs/images/report.png}")
size=${3:-1280,1600}
MAX_BYTES=300000
if [ ! -f "$report" ]; then
    echo "report_screenshot: no report at $1" >&2
    exit 1
fi
if ! command -v chromium >/dev/null; then
    if [ "$(id -u)" != 0 ]; then
        echo "report_screenshot: chromium is missing; install it as root: apt-get install -y chromium" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# a profile of its own, no network, no first-run pages: the report is self-contained
chromium --headless --no-sandbox --disable-gpu --disable-background-networking --no-first-run --hide-scrollbars \
    --user-data-dir="$work/profile" --screenshot="$work/shot.png" --window-size="$size" "file://$report" 2>"$work/chromium.log" \
    || { cat "$work/chromium.log" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
"${PYTHON:-python3}" - "$work/shot.png" "$out" "$MAX_BYTES" <<'EOF'
import sys
from PIL import Image

shot, out, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
with Image.open(shot) as image:
    image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)
size = len(open(out, "rb").read())
if size >= limit:
    sys.exit(f"report_screenshot: {out} is {size} bytes, over the {limit}-byte limit")
print(f"{out}: {size} bytes")
EOF
