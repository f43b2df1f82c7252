"""The real file formats of the cluster-image productions (docs/data_format.md)."""
