"""The version of artstyle, in one place (read by the package, the metadata and the CLI)."""

__version__ = "0.2.0"
