"""edtrain: electron-direction training for DUNE LArTPC cluster images."""

from importlib import metadata

try:
    # set at install time from the git tags (setuptools-scm); provenance adds the commit
    __version__ = metadata.version("edtrain")
except metadata.PackageNotFoundError:  # imported from a checkout that is not installed
    __version__ = "0.0.0+unknown"
