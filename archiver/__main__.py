"""`python -m archiver` is the same as the `archiver` command."""

from archiver.cli import entry_point

entry_point()
