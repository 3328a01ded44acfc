"""``python -m flywheel.cli``: the command line, as the supervisor starts its children."""

from flywheel.cli.app import app

app()
