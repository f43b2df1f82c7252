"""From plane npz files to one dataset: discover, match, chunk, assemble (docs/dataset.md)."""
