"""Errors that mean "the user asked for something that cannot be done".

The command line prints these as one line and exits non-zero; anything else is a bug
and keeps its traceback.
"""


class SketchRLError(Exception):
    """Base class of every user-facing error in sketchrl."""


class AssetError(SketchRLError):
    """An asset name is unknown, or it could not be fetched."""


class DataError(SketchRLError):
    """An input file is missing, truncated or malformed."""


class ConfigError(SketchRLError, ValueError):
    """A configuration value is invalid (the message says how to fix it)."""
