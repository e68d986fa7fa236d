"""The benchmarks' shared helpers: the results page's blocks, the server subprocess, the machine's description."""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path

import pytest

from benchmarks import results_page
from benchmarks.machine import format_loads, machine
from benchmarks.servers import ServerProcess, free_port

PAGE = """# Results

Written by hand.

<!-- benchmarks.run:begin -->
old run table
<!-- benchmarks.run:end -->

<!-- benchmarks.tracking:begin -->
old tracking table
<!-- benchmarks.tracking:end -->

Footer.
"""


def test_replace_block_replaces_only_its_own_block() -> None:
    updated = results_page.replace_block(PAGE, "benchmarks.run", "| new | table |\n")
    assert "old run table" not in updated
    assert "<!-- benchmarks.run:begin -->\n| new | table |\n<!-- benchmarks.run:end -->" in updated
    assert updated.replace("| new | table |", "old run table") == PAGE
    assert results_page.replace_block(updated, "benchmarks.run", "| new | table |") == updated


def test_replace_block_appends_a_missing_block() -> None:
    updated = results_page.replace_block(PAGE, "benchmarks.flights", "flights")
    assert updated.startswith(PAGE.rstrip())
    assert updated.endswith("<!-- benchmarks.flights:begin -->\nflights\n<!-- benchmarks.flights:end -->\n")
    assert results_page.replace_block("", "x", "body") == "<!-- x:begin -->\nbody\n<!-- x:end -->\n"


def test_replace_block_keeps_backslashes_and_group_references_verbatim() -> None:
    body = r"a \1 \g<0> \\ b"
    assert body in results_page.replace_block(PAGE, "benchmarks.run", body)


@pytest.mark.parametrize(
    ("page", "detail"),
    [
        ("<!-- x:end -->\n<!-- x:begin -->\n", "1 of the first, 1 of the second, the end first"),
        ("<!-- x:begin -->\nno end\n", "1 of the first, 0 of the second"),
        ("<!-- x:begin -->\n<!-- x:end -->\n<!-- x:begin -->\n<!-- x:end -->\n", "2 of the first, 2 of the second"),
    ],
)
def test_replace_block_refuses_broken_markers(page: str, detail: str) -> None:
    with pytest.raises(ValueError, match=f"Received: {detail}$"):
        results_page.replace_block(page, "x", "body")


def test_write_block_creates_then_updates_the_page_atomically(tmp_path: Path) -> None:
    page = tmp_path / "results.md"
    results_page.write_block(page, "benchmarks.run", "first")
    results_page.write_block(page, "benchmarks.tracking", "second")
    results_page.write_block(page, "benchmarks.run", "third")
    text = page.read_text()
    assert "first" not in text
    assert text.index("third") < text.index("second")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["results.md"]  # no temporary file left
    umask = os.umask(0)
    os.umask(umask)
    assert page.stat().st_mode & 0o777 == 0o666 & ~umask  # like any file the user writes, not private


def test_write_block_leaves_the_page_as_it_was_when_it_cannot_be_updated(tmp_path: Path) -> None:
    page = tmp_path / "results.md"
    page.write_text("<!-- x:begin -->\n")
    with pytest.raises(ValueError):
        results_page.write_block(page, "x", "body")
    assert page.read_text() == "<!-- x:begin -->\n"
    assert [path.name for path in tmp_path.iterdir()] == ["results.md"]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], results_page.RESULTS_PAGE),
        (["--quick"], None),
        (["--quick", "--results", "out.md"], Path("out.md")),
        (["--results", "out.md"], Path("out.md")),
        (["--no-results"], None),
        (["--results", "out.md", "--no-results"], None),
    ],
)
def test_page_to_write(argv: list[str], expected: Path | None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    results_page.add_arguments(parser)
    assert results_page.page_to_write(parser.parse_args(argv)) == expected


def test_section_dates_the_machine_and_the_command() -> None:
    results = {
        "machine": {"cpus": 2, "cpu_model": "Some CPU", "python": "3.11.7", "backend": "tensorflow 2.21.0"},
        "load_average_start": (0.5, 0.25, 1.0),
        "command": "python -m benchmarks.run --quick",
    }
    body = results_page.section(results, "| a |")
    first, command, table = body.split("\n\n")
    assert first.endswith(
        "2 CPU cores, Some CPU; Python 3.11.7, Keras on tensorflow 2.21.0; load average (1/5/15 "
        "min) 0.50 0.25 1.00 at the start."
    )
    assert first[:4].isdigit() and first[4] == "-"
    assert (command, table) == ("`python -m benchmarks.run --quick`", "| a |")


def test_machine_and_loads() -> None:
    about = machine()
    assert about["cpus"] == os.cpu_count()
    assert about["cpu_model"] and about["python"].startswith(f"{sys.version_info.major}.")
    assert format_loads((0.0, 1.234, 10.0)) == "0.00 1.23 10.00"


def test_free_port_is_free() -> None:
    port = free_port()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))


def test_a_server_that_exits_is_reported_with_its_log(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    server = ServerProcess(tmp_path / "no_model", module="json.tool", log_path=log)
    with pytest.raises(RuntimeError, match=r"json.tool did not listen on http://127.0.0.1:\d+; its log:\n.*usage"):
        server.wait_listening(timeout=30)
    assert server.process.returncode == 2
    assert "usage" in log.read_text()
