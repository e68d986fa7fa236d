"""The results page (docs/results.md): each benchmark replaces its own marked block with its latest table.

A block runs from ``<!-- NAME:begin -->`` to ``<!-- NAME:end -->`` (NAME: ``benchmarks.run``, ...); a benchmark
replaces its block in place, or appends it when the page has none, and leaves the rest of the page as it was.
"""

from __future__ import annotations

import argparse
import datetime
import re
import sys
from pathlib import Path
from typing import Any

from benchmarks.machine import format_loads
from models.files import write_atomically

ROOT = Path(__file__).resolve().parents[1]
RESULTS_PAGE = ROOT / "docs" / "results.md"


def markers(name: str) -> tuple[str, str]:
    """The comments that open and close ``name``'s block."""
    return f"<!-- {name}:begin -->", f"<!-- {name}:end -->"


def replace_block(page: str, name: str, body: str) -> str:
    """``page`` with ``name``'s block holding ``body``: replaced in place, or appended when the page has none.

    Raises ValueError when the page has the block's markers out of order or more than once.
    """
    begin, end = markers(name)
    starts, ends = page.count(begin), page.count(end)
    block = f"{begin}\n{body.strip()}\n{end}"
    if starts == ends == 0:
        return f"{page.rstrip()}\n\n{block}\n" if page.strip() else f"{block}\n"
    if starts != 1 or ends != 1 or page.index(begin) > page.index(end):
        raise ValueError(
            f"the page must hold {begin} once, then {end} once. Received: {starts} of the first, {ends} of the second"
            + (", the end first" if starts == ends == 1 else "")
        )
    return re.sub(re.escape(begin) + r".*?" + re.escape(end), lambda _: block, page, count=1, flags=re.DOTALL)


def section(results: dict[str, Any], table: str) -> str:
    """A block's body: today's date, the machine, the load averages at the start and the command of a benchmark's
    ``results``, then its ``table``."""
    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    about = results["machine"]
    return (
        f"{today}, {about['cpus']} CPU cores, {about['cpu_model']}; Python {about['python']}, Keras on "
        f"{about['backend']}; load average (1/5/15 min) {format_loads(results['load_average_start'])} at the "
        f"start.\n\n`{results['command']}`\n\n{table}"
    )


def write_block(path: Path, name: str, body: str) -> None:
    """Replace ``name``'s block of the page at ``path`` (created if absent) with ``body``, atomically: the page is
    either the old one or the new one, whatever interrupts the write."""
    page = path.read_text(encoding="utf-8") if path.exists() else ""
    updated = replace_block(page, name, body)
    write_atomically(path, lambda temporary: temporary.write_text(updated, encoding="utf-8"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--results PAGE`` and ``--no-results``; see `page_to_write`."""
    parser.add_argument(
        "--results",
        type=Path,
        help=f"results page to update (default: {RESULTS_PAGE.relative_to(ROOT)}, except with --quick)",
    )
    parser.add_argument("--no-results", action="store_true", help="do not write the results page")


def page_to_write(args: argparse.Namespace) -> Path | None:
    """The page a run updates: ``--results``, else the repository's own unless ``--quick`` (a quick run's numbers
    are not the page's); none with ``--no-results``."""
    if args.no_results:
        return None
    return args.results or (None if args.quick else RESULTS_PAGE)


def publish(args: argparse.Namespace, name: str, results: dict[str, Any], table: str) -> None:
    """Replace ``name``'s block of the page `page_to_write` gives (if any) with `section`."""
    page = page_to_write(args)
    if page:
        write_block(page, name, section(results, table))
        print(f"updated {page}", file=sys.stderr)
