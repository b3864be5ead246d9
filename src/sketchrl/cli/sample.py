"""`sketchrl sample` (placeholder until implemented)."""

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Not implemented yet: adds no subcommand."""
