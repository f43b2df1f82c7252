"""Synthetic production: ES kinematics, electron transport, readout and TPs, clustering, the
production writer, the oracle and the gallery (docs/simulation.md)."""
