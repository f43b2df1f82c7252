#!/bin/bash
# Executable of every edtrain HTCondor job (the `job_wrapper` resource of profiles/condor).
#
# The HTCondor executor passes the Snakemake job command as this script's arguments. When any
# Snakemake storage plugin is installed where Snakemake runs, that command starts with
# `pip install ... &&`, which plugin 0.3 cannot run: every job would die. This wrapper keeps only
# what follows the last `&&`, drops the `<python> -m snakemake` head, sets up the software
# environment and runs `python -m snakemake <job arguments>` in it.
#
# EDTRAIN_JOB_ENV, exported before starting snakemake (the profile passes EDTRAIN_* to jobs):
#   lcg        source $EDTRAIN_LCG_VIEW, then run the submitting Python (a venv made on that view)
#   conda      `conda activate $EDTRAIN_CONDA_ENV`, conda from $EDTRAIN_CONDA_BASE or from PATH
#   container  apptainer exec --nv $EDTRAIN_CONTAINER, with /cvmfs, /eos and /afs bound if present
#   none       run the submitting Python as it is
#   unset      lcg if the submitting Python is (a venv made from) an LCG view's, otherwise none
set -euo pipefail

# HTCondor gives a job no PATH of its own (getenv passes only EDTRAIN_*).
export PATH=${PATH:-/usr/local/bin:/usr/bin:/bin}
LCG_VIEW=${EDTRAIN_LCG_VIEW:-/cvmfs/sft.cern.ch/lcg/views/LCG_106_cuda/x86_64-el9-gcc11-opt/setup.sh}

args=("$@")
last=-1
for i in "${!args[@]}"; do
    if [[ ${args[i]} == "&&" ]]; then last=$i; fi
done
args=("${args[@]:last+1}")
python=""
if [[ ${#args[@]} -ge 3 && ${args[1]} == "-m" && ${args[2]} == "snakemake" ]]; then
    python=${args[0]}
    args=("${args[@]:3}")
fi

MODE=${EDTRAIN_JOB_ENV:-}
if [[ -z $MODE ]]; then
    home=$python  # the Python itself, or the one its venv was made from
    if [[ -n $python && -f $(dirname "$python")/../pyvenv.cfg ]]; then
        home=$(sed -n 's/^home *= *//p' "$(dirname "$python")/../pyvenv.cfg")
    fi
    if [[ $home == /cvmfs/sft.cern.ch/lcg/* ]]; then MODE=lcg; else MODE=none; fi
fi

case $MODE in
    lcg)
        if [[ ! -f $LCG_VIEW ]]; then
            echo "edtrain job wrapper: no LCG view at $LCG_VIEW (EDTRAIN_LCG_VIEW)" >&2
            exit 2
        fi
        set +u
        # shellcheck disable=SC1090
        source "$LCG_VIEW"
        set -u
        python=${python:-python3}
        ;;
    conda)
        if [[ -n ${EDTRAIN_CONDA_BASE:-} ]]; then
            # shellcheck disable=SC1091
            source "$EDTRAIN_CONDA_BASE/etc/profile.d/conda.sh"
        else
            eval "$(conda shell.bash hook)"
        fi
        set +u
        conda activate "${EDTRAIN_CONDA_ENV:?EDTRAIN_CONDA_ENV names the conda env to run in}"
        set -u
        python=python
        ;;
    container)
        image=${EDTRAIN_CONTAINER:?EDTRAIN_CONTAINER names the image to run in}
        binds=()
        for dir in /cvmfs /eos /afs; do
            if [[ -d $dir ]]; then binds+=(--bind "$dir"); fi
        done
        echo "edtrain job wrapper: apptainer image $image" >&2
        exec apptainer exec --nv "${binds[@]}" --pwd "$PWD" "$image" \
            python3 -m snakemake "${args[@]}"
        ;;
    none)
        python=${python:-python3}
        ;;
    *)
        echo "edtrain job wrapper: unknown EDTRAIN_JOB_ENV=$MODE (lcg|conda|container|none)" >&2
        exit 2
        ;;
esac

# The environment's command-line tools (edtrain, snakemake) next to its Python come first.
if [[ $python == */* ]]; then
    PATH="$(dirname "$python"):$PATH"
fi
echo "edtrain job wrapper: environment $MODE, $python" >&2
exec "$python" -m snakemake "${args[@]}"
