"""The ``flywheel`` command line (see :mod:`flywheel.cli.app`)."""

from flywheel.cli.app import app

__all__ = ["app"]
