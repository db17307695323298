#!/usr/bin/env bash
# One-shot set-up on a fresh Debian/Python 3.11 machine: Debian packages, .venv, pip packages.
# Idempotent: a second run only checks what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PKGS="gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm openssh-server openssh-client"
missing=""
for p in $APT_PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "[setup] apt-get install$missing"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.edgereid-setup
want=$(cat pyproject.toml setup.py tools/setup.sh | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
.venv/bin/pip install -q --upgrade pip
# torch first: the local CPU wheel; a later resolve would otherwise pull CUDA builds.
.venv/bin/pip install -q torch==2.13.0
.venv/bin/pip install -q -e ".[dev]"
# Larq Compute Engine's interpreter (the Lce* op oracle) needs numpy < 2: its own folder, run in a worker.
.venv/bin/pip install -q --upgrade --no-deps --target .venv/lce-runtime numpy==1.26.4 larq-compute-engine==0.16.0
echo "$want" > "$stamp"
echo "[setup] done"
