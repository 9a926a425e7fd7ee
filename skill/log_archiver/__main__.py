"""`python -m log_archiver ...`: the same as the `log-archiver` command."""

from log_archiver.cli import main

main()
