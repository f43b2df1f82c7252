"""Synthetic production: ES kinematics, electron transport, readout and TPs, clustering, the
production writer, the oracle and the gallery (docs/simulation.md)."""

# Raised whenever the same settings and seed give other files (physics, readout, clustering,
# formats): the workflow then makes a run's production again and retrains on it, instead of
# reusing files the code no longer makes (docs/simulation.md, "Reproducibility").
# 1: upstream's clustering and matching, cluster files as TTrees (December 2026).
GENERATOR_VERSION = 1
