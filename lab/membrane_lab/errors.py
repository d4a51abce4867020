"""The one error the tool reports to its user, and its log line."""

from __future__ import annotations

import sys


class LabError(Exception):
    """A failure with a message meant for the user (no traceback)."""


def log(message: str) -> None:
    print(f"membrane-lab: {message}", file=sys.stderr, flush=True)
