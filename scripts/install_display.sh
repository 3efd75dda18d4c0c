#!/usr/bin/env bash
# Debian packages for running napari headless (the napari plugin's tests): an X server in
# memory (Xvfb), Mesa's OpenGL and the X/xcb libraries Qt loads. Installed only when missing;
# needs root (CI and the project's machines run as root).
set -euo pipefail
PACKAGES=(xvfb xauth libgl1-mesa-dri libegl1 libxkbcommon-x11-0 libxcb-icccm4 libxcb-keysyms1 libxcb-xinerama0
          libxcb-xinput0 libxcb-cursor0 libxcb-image0 libxcb-render-util0 libxcb-shape0 libdbus-1-3 libfontconfig1)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "install_display: missing ${missing[*]}; run as root to install them (the napari tests will be skipped)" >&2
        exit 0
    fi
    echo "install_display: apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
