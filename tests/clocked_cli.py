"""`safecall` run as a real process with a clock set from outside, for tests and benchmarks.

The command has no fake time for real runs (a drill has its own --now). Tests in one process pass a clock to
create_app; this does the same for a child process, e.g. scale-out workers sharing one accelerated timeline:

    python tests/clocked_cli.py --at 2026-11-23T08:00+09:00 [--speed 100 --anchor UNIX_TIME] \\
        -- --config DIR worker run ...
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from safecall.cli import create_app  # noqa: E402
from safecall.clock import ScaledClock, VirtualClock  # noqa: E402


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--at", required=True, type=datetime.fromisoformat, help="the time the clock starts at (with a zone)"
    )
    parser.add_argument(
        "--speed", type=float, help="virtual seconds per real second (default: time moves only when slept)"
    )
    parser.add_argument("--anchor", type=float, help="with --speed: the real Unix time at which the clock reads --at")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="-- then the safecall arguments")
    options = parser.parse_args(argv)
    args = options.args[1:] if options.args[:1] == ["--"] else options.args
    clock = ScaledClock(options.at, options.speed, options.anchor) if options.speed else VirtualClock(options.at)
    create_app(make_clock=lambda: clock)(args, prog_name="safecall")


if __name__ == "__main__":
    main(sys.argv[1:])
