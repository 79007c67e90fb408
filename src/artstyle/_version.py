"""The version of artstyle, in one place (read by the package, the metadata and the CLI)."""

__version__ = "0.1.0"
