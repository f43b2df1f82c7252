"""Exit statuses of ``edtrain train`` that say "not here, not now" rather than a result.

Nothing is written: the job fails, for Snakemake's retries or the user, instead of recording
a failed training (or, for ``edtrain hyperopt-trial``, a failed trial) that would be final.
"""

NO_GPU = 2  # require_gpu is set and no GPU is visible: a placement problem
STATE_BUSY = 3  # another training holds the state directory's lock (edtrain.state)
NOT_HERE = (NO_GPU, STATE_BUSY)
