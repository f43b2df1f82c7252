#!/usr/bin/env bash
# The accuracy benchmark at its GPU size (benchmarks/accuracy.py --size gpu) on a machine with
# one GPU, JAX and no network: 320k events simulated on every core, 100k training samples,
# v12 and v15 at full width, 6 epochs each; prints one Markdown table after each version.
# Run from the repository root; under 10 minutes on one H200 (12 epochs of the whole pool
# took 8 minutes for v12 alone). Pipe its output through `grep --line-buffered` only: a
# block-buffered filter keeps the last lines from a run cut at its time limit.
#
# Installs nothing from the network. Packages the machine lacks travel as wheels in $WHEELS
# (default .whl/), made beforehand where pip works, for that machine's Python (here 3.12):
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
#     --platform manylinux_2_17_x86_64 -d .whl keras==3.15.1 namex==0.1.0 optree==0.20.0 \
#     uproot==5.7.7 awkward==2.14.0 awkward-cpp==57 cramjam==2.14.0 jsonschema==4.26.0 \
#     referencing==0.37.0 jsonschema-specifications==2025.9.1 rpds-py==2026.9.1
# (numpy, pandas, pyarrow, pyyaml, xxhash, h5py, rich, ml-dtypes and fsspec were already there).
set -euo pipefail
cd "$(dirname "$0")/../.."
wheels=${WHEELS:-.whl}
if compgen -G "$wheels/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/edtrain-site "$wheels"/*.whl
    export PYTHONPATH=/tmp/edtrain-site${PYTHONPATH:+:$PYTHONPATH}
fi
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
exec python3 benchmarks/accuracy.py --size gpu --workdir "${WORKDIR:-/tmp/edacc-gpu}" "$@"
