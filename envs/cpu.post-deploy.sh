#!/usr/bin/env bash
# Snakemake runs this once, inside the new environment, from the workflow directory:
# install this checkout's edtrain package (code only; the dependencies are in the yaml).
set -euo pipefail
python -m pip install --no-deps --editable .
