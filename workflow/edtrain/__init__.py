"""edtrain: electron-direction training for DUNE LArTPC cluster images."""

__version__ = "0.1.0"
