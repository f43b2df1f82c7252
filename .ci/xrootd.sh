#!/usr/bin/env bash
# Install Debian's XRootD server if it is missing: tests/unit/test_dataset_xrootd.py starts
# one on a free localhost port to read a production by root:// URL (it fails in CI without it).
set -euo pipefail
if command -v xrootd >/dev/null; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq xrootd-server
