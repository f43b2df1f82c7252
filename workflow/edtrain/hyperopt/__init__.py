"""Hyperparameter search as a static Snakemake plan (see docs/hyperopt.md).

A version's ``hyperopt`` block fixes rounds × trials; every trial is its own job.
Round 0 draws scrambled Halton points; each later round rebuilds an in-memory Optuna
study from the recorded results of the earlier rounds and asks a seeded TPE sampler.
No database is shared between jobs, so a trial's parameters are a pure function of
(seed, round, trial index, earlier results) and any job can be rerun anywhere.
"""
