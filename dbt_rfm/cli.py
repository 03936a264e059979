"""``dbt-rfm``: the command line. Subcommands live in their own modules; this file dispatches."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from dbt_rfm.errors import RfmError


def build_parser() -> argparse.ArgumentParser:
    """The parser with every subcommand."""
    from dbt_rfm.finetune import command as finetune
    from dbt_rfm.pretrain import command as pretrain

    parser = argparse.ArgumentParser(prog="dbt-rfm", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pretrain", help="pretrain the relational foundation model")
    pretrain.add_arguments(p)
    p.set_defaults(run=pretrain.run)
    p = sub.add_parser("finetune", help="fine-tune the net on one declared target")
    finetune.add_arguments(p)
    p.set_defaults(run=finetune.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point (``dbt-rfm = dbt_rfm.cli:main``); returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    try:
        return int(args.run(args))
    except RfmError as exc:
        print(f"dbt-rfm {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
