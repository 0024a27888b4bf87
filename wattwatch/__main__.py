"""`python -m wattwatch` is the `wattwatch` command."""

from wattwatch.cli import main

main()
