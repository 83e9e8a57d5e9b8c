"""The `safecall` command: each command parses its arguments, calls one library function and prints.

Commands are module-level functions in Typer groups, one module a group (recipients, campaign, visits, ...);
`app.create_app` puts them under the root command.
"""

from safecall.cli.app import create_app, main

__all__ = ["create_app", "main"]
