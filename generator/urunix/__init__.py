"""urunix: package unikernels (and Linux guests) as OCI images for urunc."""

__version__ = "0.1.0"
