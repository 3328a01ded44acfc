"""Where a model came from: the code version recorded on its card."""

from __future__ import annotations

import subprocess
from pathlib import Path

from flywheel import __version__


def code_version(project: Path) -> str:
    """``<package version>+<git commit>[-dirty]``, or the package version outside git."""
    try:
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"],
            cwd=project,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+{commit}" if commit else __version__
