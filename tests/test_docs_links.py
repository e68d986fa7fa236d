"""README.md and docs/**/*.md refer only to files in the repository: relative links, and backticked paths that
look like repository files (``docs/x.md``, ``weights/...``, ``models/recipes/...``)."""

from __future__ import annotations

import functools
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOP_LEVEL = ("docs", "weights", "models", "follower", "sim_bridge", "benchmarks", "tests", "runs", ".gpu", ".ci")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
PLACEHOLDER = re.compile(r"[A-Z]{2,}|[*?<>{}\[\]$]|\.\.\.|…")  # NAME, OUT, globs, <UTC time>, elisions
# What the documented commands write: a reader finds these after running them, not in a checkout.
WRITTEN_BY_COMMANDS = {"benchmarks/results.json", "runs/sweeps", "runs/sweeps/sweeps.db", "runs/farcheck"}


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


@functools.cache
def tracked() -> frozenset[str] | None:
    """The files git tracks in this checkout and their folders, relative to the root; None outside a checkout."""
    try:
        listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    files = listed.splitlines()
    return frozenset(files) | {folder.as_posix() for name in files for folder in Path(name).parents}


def exists(path: Path) -> bool:
    """A file or folder of the repository (tracked by git: a git-ignored run folder does not count), or a model
    address (``weights/NAME`` for ``weights/NAME.keras``)."""
    candidates = (path, path.with_name(path.name + ".keras"))
    if (files := tracked()) is None:
        return any(candidate.exists() for candidate in candidates)
    inside = [candidate.resolve() for candidate in candidates if candidate.resolve().is_relative_to(ROOT)]
    return any(candidate.relative_to(ROOT).as_posix() in files for candidate in inside)


def linked(page: Path, text: str) -> list[str]:
    """Relative links of ``text`` (on ``page``) whose file is missing."""
    missing = []
    for target in LINK.findall(text):
        target = target.split("#")[0]
        if not target or re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("/"):
            continue  # an anchor on the same page, a URL (http:, mailto:), a server path
        if "../shared" in (page.parent / target).resolve().as_posix().replace(ROOT.parent.as_posix(), ".."):
            continue
        if not exists(page.parent / target):
            missing.append(target)
    return missing


def mentioned(text: str) -> list[str]:
    """Backticked single repository paths of ``text`` that are missing (command lines, placeholders, globs and
    paths outside the repository are not paths of it)."""
    missing = []
    for span in CODE_SPAN.findall(FENCE.sub("", text)):
        path = span.strip().rstrip(".,;:")
        if " " in path or PLACEHOLDER.search(path) or path.startswith(("../", "/", "~")):
            continue
        if path.split("/")[0] not in TOP_LEVEL or "/" not in path or path.rstrip("/") in WRITTEN_BY_COMMANDS:
            continue
        if not exists(ROOT / path):
            missing.append(path)
    return missing


@pytest.mark.parametrize("page", pages(), ids=lambda page: page.relative_to(ROOT).as_posix())
def test_every_file_referred_to_exists(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    missing = sorted(set(linked(page, text) + mentioned(text)))
    assert not missing, f"{page.relative_to(ROOT)} refers to files not in the repository: {', '.join(missing)}"


def test_a_missing_file_is_found(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    text = (
        "[a guide](nowhere.md), [a section](#here), [a site](https://example.org/x.md), `docs/nowhere.md`, "
        "`weights/model_weights`, `weights/NAME.keras`, `python -m models.train --out runs/x`, `runs/s13/people.patch`"
        "\n```\nruns/in/a/fence.py\n```\n"
    )
    assert linked(page, text) == ["nowhere.md"]
    assert mentioned(text) == ["docs/nowhere.md", "runs/s13/people.patch"]


def test_a_file_git_ignores_is_not_in_the_repository() -> None:
    if tracked() is None:
        pytest.skip("not a git checkout: the files on disk stand for the repository's")
    probe = ROOT / "runs" / "docs-links-probe.md"  # runs/ is git-ignored: what a local run leaves there
    probe.parent.mkdir(exist_ok=True)
    probe.write_text("scratch\n")
    try:
        assert mentioned("`runs/docs-links-probe.md`") == ["runs/docs-links-probe.md"]
    finally:
        probe.unlink()
    assert exists(ROOT / "docs" / "results.md") and exists(ROOT / "weights" / "model_weights")
