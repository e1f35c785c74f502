"""``python -m logconf`` (also the ``logconf`` script): shipped config paths, config checks, the
operator tools over a run's rank files (``summary``, ``merge``, ``tail``, ``report``, ``gather``), and the ones
that find a failure: ``errors`` and ``stacks``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence

from logconf.config import check, lnav_format_path, load, skyrl_config_path, vllm_config_path
from logconf.errors import ConfigError
from logconf.gather import FileCopy
from logconf.logfiles import Entry, LogDirError
from logconf.merge import EntryFilter, merge_files, render, render_json
from logconf.summary import (
    PROBLEMS,
    history_notes,
    node_tables,
    summarise,
    summary_json,
    summary_table,
    too_long_notes,
    top_table,
)
from logconf.tail import follow, last_entries

__all__ = ["main"]


def _path(args: argparse.Namespace) -> int:
    print({"vllm": vllm_config_path, "skyrl": skyrl_config_path, "lnav": lnav_format_path}[args.which]())
    return 0


def _check(args: argparse.Namespace) -> int:
    files = check(load(args.file), args.file)
    print(f"{args.file}: ok")
    for path in files:
        print(f"  writes {path}")
    return 0


def _summary(args: argparse.Namespace) -> int:
    if args.top < 0:
        raise LogDirError(f"--top: {args.top} is not a count; give 1 or more (0, the default, lists none)")
    summaries = summarise(args.dir, top=args.top)
    document = summary_json(args.dir, summaries)
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        print(summary_table(summaries))
        nodes = node_tables(summaries)
        if nodes:
            print()
            print(nodes)
        for note in too_long_notes(summaries) + history_notes(summaries):
            print(note)
        repeats = top_table(summaries)
        if repeats:
            print()
            print(repeats)
            print()
        totals = document["totals"]
        bad = {k: totals[k] for k in PROBLEMS if totals[k]}
        verdict = "ok" if document["ok"] else "PROBLEMS: " + ", ".join(f"{v} {k}" for k, v in bad.items())
        print(f"{totals['files']} files, {totals['records']} records, {totals['lines']} lines: {verdict}")
    return 0 if document["ok"] else 1


def _gather(args: argparse.Namespace) -> int:
    from logconf.gather import gather  # imports Ray when it runs, never at `import logconf`

    def report(copy: FileCopy) -> None:
        if copy.skipped or copy.failed:
            return  # said once the run is over, on stderr
        again = " (the node's file was replaced: copied anew)" if copy.restarted else ""
        print(f"{copy.node}/{copy.name}: {copy.copied} bytes copied, {copy.end} in all{again}", flush=True)

    result = gather(
        args.dest,
        address=args.address,
        directory=args.dir,
        chunk=int(args.chunk_mib * (1 << 20)),
        jobs=args.jobs,
        progress=None if args.quiet else report,
    )
    for node, info in result.nodes.items():
        if "failed" not in info:
            print(f"{node}: {len(info['files'])} files from {info['dir']} (node {info['node_id'][:8]}, {info['ip']})")
    if result.worker_peak_rss_kib:
        private = result.worker_peak_anon_kib / 1024
        print(f"peak RSS of the node readers: {result.worker_peak_rss_kib / 1024:.0f} MiB ({private:.0f} MiB private)")
    print(f"{result.copied} bytes copied into {result.dest}", flush=True)
    for file, why in result.skipped.items():
        print(f"logconf gather: {file}: not copied: {why}", file=sys.stderr)
    for node, why in result.failed.items():
        print(f"logconf gather: {node}: FAILED: {why}", file=sys.stderr)
    if result.failed:
        print(f"logconf gather: {len(result.failed)} node(s) failed, the others are gathered; run gather again", file=sys.stderr)
    return 1 if result.failed else 0


def _report(args: argparse.Namespace) -> int:
    from logconf.report import write_report

    if not args.quiet_s > 0:
        raise LogDirError(f"--quiet-s: {args.quiet_s} is not a duration; give seconds above 0, e.g. 60")
    out = args.output or "report.html"
    data = write_report(args.dir, out, quiet_s=args.quiet_s)
    s = data["summary"]
    errors = s["marks"]["error"] + s["marks"]["critical"]
    print(
        f"{out}: {len(data['lanes'])} lanes from {s['files']} files, {s['records']} records, {errors} errors, "
        f"{len(data['kept'])} records kept; {os.path.getsize(out)} bytes"
    )
    return 0


def _errors(args: argparse.Namespace) -> int:
    from logconf.failures import render_report, report_json, scan
    from logconf.merge import parse_time

    since = parse_time("--since", args.since) if args.since else ""
    report = scan(args.dir, since=since, quiet_s=args.quiet_after)
    if args.json:
        print(json.dumps(report_json(report, args.dir), indent=1))
    else:
        print(render_report(report, args.quiet_after))
    return 1 if report.errors else 0


def _stacks(args: argparse.Namespace) -> int:
    from logconf import stacks

    dirs = [os.path.abspath(d) for d in args.dir or ()]
    if args.address:
        collection = stacks.collect_cluster(args.address, dirs, args.timeout)
    else:
        collection = stacks.collect_here(dirs, args.timeout)
    if not collection.dumps:
        where = f"writing into {', '.join(dirs)} " if dirs else ""
        raise LogDirError(
            f"no live process {where}registered for stack dumps on {', '.join(collection.nodes)} "
            f"(registry {stacks.registry_dir()}); processes register when they build logconf's rank-file handler"
        )
    if args.dest:
        stacks.write_dest(collection, args.dest)
    print(json.dumps(stacks.report_json(collection), indent=1) if args.json else stacks.render(collection))
    if args.dest and not args.json:
        print(f"each dump, whole: {os.path.abspath(args.dest)}/<node>/rank<R>-<process>-<pid>.txt; all of it: stacks.json")
    return 1 if collection.missing else 0


def _filter(args: argparse.Namespace) -> EntryFilter:
    return EntryFilter(
        level=args.level,
        loggers=tuple(args.logger or ()),
        grep=args.grep,
        since=getattr(args, "since", None),
        until=getattr(args, "until", None),
    )


def _writer(args: argparse.Namespace) -> Callable[[Iterable[Entry]], None]:
    to_text = render_json if args.json else render
    out = sys.stdout

    def write(entries: Iterable[Entry]) -> None:
        out.writelines(to_text(e) + "\n" for e in entries)

    return write


def _merge(args: argparse.Namespace) -> int:
    keep = _filter(args)
    entries = merge_files(args.dir)
    _writer(args)(filter(keep, entries) if keep.active else entries)
    return 0


def _tail(args: argparse.Namespace) -> int:
    keep, write = _filter(args), _writer(args)
    if not args.follow:
        write(last_entries(args.dir, args.lines, keep))
        return 0

    def emit(entries: list[Entry]) -> None:
        write(entries)
        sys.stdout.flush()

    try:
        follow(args.dir, args.lines, keep, emit, interval=args.interval)
    except KeyboardInterrupt:
        pass
    return 0


def _add_filters(parser: argparse.ArgumentParser, *, times: bool) -> None:
    parser.add_argument(
        "--level",
        help="keep records at or above this level: DEBUG, INFO, WARNING, ERROR, CRITICAL, Loguru's TRACE (5) "
        "and SUCCESS (25), or a number",
    )
    parser.add_argument(
        "--logger", action="append", metavar="PREFIX", help="keep records of this logger or its children (repeatable)"
    )
    if times:
        parser.add_argument(
            "--since", metavar="TIME", help="keep records at or after this ISO 8601 time (inclusive; UTC if no offset)"
        )
        parser.add_argument(
            "--until", metavar="TIME", help="keep records at or before this ISO 8601 time (inclusive; UTC if no offset)"
        )
    parser.add_argument("--grep", metavar="REGEX", help="keep records whose text (traceback included) matches")
    parser.add_argument("--json", action="store_true", help="print one JSON object per record, with its file")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="logconf", description="Per-rank, per-subsystem logging for RL stacks.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    path = commands.add_parser(
        "path",
        help="print the absolute path of a shipped config, or of the lnav format",
        epilog="examples:\n  export VLLM_LOGGING_CONFIG_PATH=$(python -m logconf path vllm)\n"
        '  lnav -i "$(logconf path lnav)"',
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    path.add_argument("which", choices=["vllm", "skyrl", "lnav"])
    path.set_defaults(run=_path)

    checker = commands.add_parser(
        "check",
        help="validate a config and print the files it would write here",
        epilog="example: LOGCONF_RANK=3 python -m logconf check $(python -m logconf path vllm)",
    )
    checker.add_argument("file")
    checker.set_defaults(run=_check)

    raw = argparse.RawDescriptionHelpFormatter
    summary = commands.add_parser(
        "summary",
        help="one row per rank file: counts, span, processes, loggers, levels, misplaced, torn and too-long lines",
        description="Summarise the rank files in DIR (text and JSON alike). Exits 1 when any file holds "
        "foreign records (the other subsystem's loggers), records of another rank, unparsable or torn lines, "
        "or lines over 1 MiB (counted with their line numbers, never read whole).",
        epilog="examples:\n  logconf summary /tmp/logconf\n  logconf summary demo-logs --json | jq .totals\n"
        "  logconf summary demo-logs --top 5",
        formatter_class=raw,
    )
    summary.add_argument("dir", metavar="DIR", help="a run's LOGCONF_DIR (or one rank file)")
    summary.add_argument("--json", action="store_true", help="print the summary as JSON (schema logconf.summary/1)")
    summary.add_argument(
        "--top",
        type=int,
        default=0,
        metavar="N",
        help="also list each file's N most repeated messages (numbers, ids and addresses masked), "
        "with counts and first and last time (--json: a 'top' list per file)",
    )
    summary.set_defaults(run=_summary)

    merge = commands.add_parser(
        "merge",
        help="all rank files as one timeline, tracebacks kept whole",
        description="Print every rank file in DIR as one timeline ordered by time, then file, then position, "
        "each record tagged with its file, rank and process. Streams: memory is one record per file.",
        epilog="examples:\n  logconf merge /tmp/logconf --level WARNING\n"
        "  logconf merge demo-logs --logger vllm.v1.engine --since 2026-11-26T09:10:00Z --until 2026-11-26T09:11:00Z\n"
        "  logconf merge demo-logs --grep 'step 40|Traceback'",
        formatter_class=raw,
    )
    merge.add_argument("dir", metavar="DIR", help="a run's LOGCONF_DIR (or one rank file)")
    _add_filters(merge, times=True)
    merge.set_defaults(run=_merge)

    tail = commands.add_parser(
        "tail",
        help="the last records of every rank file, merged; -f follows them, new files included",
        description="Print the last N records of DIR's merged timeline; with -f, keep printing records as they "
        "arrive in any rank file, including files created later. Ctrl-C stops.",
        epilog="examples:\n  logconf tail /tmp/logconf -n 20\n  logconf tail -f /tmp/logconf --level WARNING",
        formatter_class=raw,
    )
    tail.add_argument("dir", metavar="DIR", help="a run's LOGCONF_DIR")
    tail.add_argument("-f", "--follow", action="store_true", help="keep following the files")
    tail.add_argument("-n", "--lines", type=int, default=10, metavar="N", help="records to print first (default 10)")
    tail.add_argument("--interval", type=float, default=0.2, metavar="S", help="seconds between polls with -f (default 0.2)")
    _add_filters(tail, times=False)
    tail.set_defaults(run=_tail)

    reporter = commands.add_parser(
        "report",
        help="one self-contained HTML page: every rank and process on one time axis, marks, first error, gaps",
        description="Read DIR (a run's LOGCONF_DIR or gather's DEST) once and write one HTML file that needs no network: "
        "a lane per rank file and process on one time axis with record density, WARNING, ERROR and CRITICAL marked, "
        "the run's first error, processes that went quiet while others logged, and a click on a mark showing its "
        "records with the lines around them. Bounded: bins and the telling records, not every line; the page says "
        "what it left out.",
        epilog="examples:\n  logconf report demo-logs -o run.html\n"
        "  logconf gather run42-logs -q && logconf report run42-logs -o run42.html --quiet-s 300",
        formatter_class=raw,
    )
    reporter.add_argument("dir", metavar="DIR", help="a run's LOGCONF_DIR, gather's DEST, or one rank file")
    reporter.add_argument("-o", "--output", metavar="FILE", help="the page to write (default: report.html here)")
    reporter.add_argument(
        "--quiet-s",
        type=float,
        default=60.0,
        metavar="S",
        help="show a gap where a process wrote nothing for S seconds while others logged (default 60)",
    )
    reporter.set_defaults(run=_report)

    gatherer = commands.add_parser(
        "gather",
        help="copy every Ray node's rank files into DEST/<node>/, through Ray; run it again to bring the copies up to date",
        description="Connect to the running Ray cluster, run a task pinned to each alive node that lists the rank "
        "files in that node's directory (--dir, else the LOGCONF_DIR its raylet was started with, else logconf's default), "
        "and stream each file back in chunks into DEST/<node>/<file>. <node> is the node's host name, or host name "
        "and IP (or short node id) where nodes share one, and stays the node's for the life of DEST "
        "(DEST/logconf-gather.json). Files are copied up to their last whole line; running gather again continues "
        "each copy where it ended. Links among rank files are not followed. A node that fails is named on stderr, "
        "the others are gathered, and the exit status is 1. summary, merge and tail read DEST as one run.",
        epilog="examples:\n  logconf gather run42-logs && logconf summary run42-logs\n"
        "  logconf gather run42-logs --address 10.0.0.5:6379 --dir /scratch/run42/logs",
        formatter_class=raw,
    )
    gatherer.add_argument("dest", metavar="DEST", help="directory to gather into (created if missing)")
    gatherer.add_argument("--address", help="the Ray cluster's address (default: auto, as ray.init finds it)")
    gatherer.add_argument("--dir", help="the rank-file directory on every node (default: each node's own LOGCONF_DIR)")
    gatherer.add_argument("--chunk-mib", type=float, default=8, metavar="MIB", help="size of one streamed chunk (default 8)")
    gatherer.add_argument("--jobs", type=int, default=4, metavar="N", help="files copied at once (default 4)")
    gatherer.add_argument("-q", "--quiet", action="store_true", help="print only the per-node lines and the total")
    gatherer.set_defaults(run=_gather)

    errors = commands.add_parser(
        "errors",
        help="the run's first error with what led to it, each distinct error once, and which processes went quiet",
        description="Read every rank file and .stdio.log copy in DIR (a run's directory or gather's DEST). Print the "
        "first ERROR or CRITICAL record (or raw traceback, or C++ 'terminate called', in a stdio copy) whole, with the "
        "lines its process wrote just before it; each distinct error once (numbers, addresses and ids masked) with "
        "its count, ranks and processes; and each process's last record, marking those that went quiet. Exits 1 when "
        "the run has an error, 0 when it has none.",
        epilog="examples:\n  logconf errors /tmp/logconf\n  logconf gather run42-logs && logconf errors run42-logs --json",
        formatter_class=raw,
    )
    errors.add_argument("dir", metavar="DIR", help="a run's LOGCONF_DIR, or a directory that logconf gather wrote")
    errors.add_argument("--since", metavar="TIME", help="only records at or after this ISO 8601 time (UTC if no offset)")
    errors.add_argument(
        "--quiet-after",
        type=float,
        default=60.0,
        metavar="S",
        help="a process went quiet when its last record is this many seconds before the run's last, and before "
        "the others of its kind (default 60)",
    )
    errors.add_argument("--json", action="store_true", help="print the report as JSON (schema logconf.errors/1)")
    errors.set_defaults(run=_errors)

    stacker = commands.add_parser(
        "stacks",
        help="make every process of the run write its threads' stacks (no ptrace), group them, name the odd ones out",
        description="Signal every live process that logs through logconf on this machine (or, with --address, on every "
        "alive Ray node, one pinned task per node) with LOGCONF_STACKS_SIGNAL (default SIGRTMIN+5): each writes the "
        "stacks of all its threads from C (faulthandler), even while blocked in a C call or holding the GIL. The "
        "stacks come back grouped: where each kind of process is, and which ones are elsewhere. With DEST, each dump "
        "is also written whole, with a header naming its rank, process, pid, host and time.",
        epilog="examples:\n  logconf stacks --dir /tmp/logconf\n"
        "  logconf stacks run42-stacks --address auto --json > stacks.json",
        formatter_class=raw,
    )
    stacker.add_argument("dest", metavar="DEST", nargs="?", help="also write each dump whole into DEST/<node>/")
    stacker.add_argument("--address", help="reach every Ray node of the cluster at this address ('auto' finds it)")
    stacker.add_argument(
        "--dir", action="append", metavar="DIR", help="only processes writing into this log directory (repeatable)"
    )
    stacker.add_argument("--timeout", type=float, default=5.0, metavar="S", help="wait this long for each dump (default 5)")
    stacker.add_argument("--json", action="store_true", help="print everything as JSON (schema logconf.stacks/1)")
    stacker.set_defaults(run=_stacks)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (ConfigError, LogDirError) as exc:
        print(f"logconf {args.command}: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `logconf merge DIR | head`: the reader left, which is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
