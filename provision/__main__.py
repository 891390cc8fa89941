"""`python -m provision` runs the command line."""

from provision.cli.main import run

run()
