"""`python -m log_archiver ...`: the same as the `log-archiver` command."""

from .cli import main

main()
