"""`python cli.py ...` from a checkout: the same command as the installed `safecall` (it lives in safecall/cli/)."""

from safecall.cli import main

if __name__ == "__main__":
    main()
