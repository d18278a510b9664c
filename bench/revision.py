"""Which code a benchmark measured: the commit, and whether the checkout had changes beyond it."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What a benchmark writes or a page quotes from it: changes there are not changes to the code.
NOT_CODE = (":(exclude)bench/results.md", ":(exclude)docs")


def describe() -> str:
    """ "commit abc1234", with "and uncommitted changes" when files outside what the benchmarks
    write differ from it or are new; "code outside git" without git or its history."""
    try:
        commit = _git("rev-parse", "--short", "HEAD")
        changed = _git("status", "--porcelain", "--", ".", *NOT_CODE)
    except (OSError, subprocess.CalledProcessError):
        return "code outside git"
    return f"commit {commit}" + (" and uncommitted changes" if changed else "")


def short(rev: str) -> str | None:
    """``rev``'s short commit id, or None when it names no commit here."""
    try:
        return _git("rev-parse", "--verify", "--quiet", "--short", f"{rev}^{{commit}}")
    except (OSError, subprocess.CalledProcessError):
        return None


def _git(*args: str) -> str:
    done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()
