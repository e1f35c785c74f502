"""``python -m logconf``: print the shipped files' paths and check configs."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from logconf.config import check, load, skyrl_config_path, vllm_config_path
from logconf.errors import ConfigError

__all__ = ["main"]


def _path(args: argparse.Namespace) -> int:
    print(vllm_config_path() if args.which == "vllm" else skyrl_config_path())
    return 0


def _check(args: argparse.Namespace) -> int:
    files = check(load(args.file), args.file)
    print(f"{args.file}: ok")
    for path in files:
        print(f"  writes {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="logconf", description="Per-rank, per-subsystem logging for RL stacks.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    path = commands.add_parser(
        "path",
        help="print the absolute path of a shipped config",
        epilog="example: export VLLM_LOGGING_CONFIG_PATH=$(python -m logconf path vllm)",
    )
    path.add_argument("which", choices=["vllm", "skyrl"])
    path.set_defaults(run=_path)

    checker = commands.add_parser(
        "check",
        help="validate a config and print the files it would write here",
        epilog="example: LOGCONF_RANK=3 python -m logconf check $(python -m logconf path vllm)",
    )
    checker.add_argument("file")
    checker.set_defaults(run=_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except ConfigError as exc:
        print(f"logconf: {exc}", file=sys.stderr)
        return 2
