"""`python -m safecall`: the same command as the installed `safecall`."""

from safecall.cli import main

main()
