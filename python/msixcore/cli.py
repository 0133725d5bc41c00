"""The ``msixcore`` command line.

User errors (bad parameters, unknown names, unreadable files) print one line on
stderr and exit with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from msixcore._core import MsixError, __version__


def _cmd_demo(_args: argparse.Namespace) -> int:
    from msixcore.demo import run_demo

    print(run_demo())
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(
        prog="msixcore",
        description="Simulate MSI-X / IMS interrupt allocation, remapping and delivery.",
    )
    parser.add_argument("--version", action="version", version=f"msixcore {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="show the core models at work on a small host")
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        rc: int = args.func(args)
    except (MsixError, ValueError, OSError) as exc:
        print(f"msixcore: error: {exc}", file=sys.stderr)
        return 2
    return rc


if __name__ == "__main__":
    sys.exit(main())
