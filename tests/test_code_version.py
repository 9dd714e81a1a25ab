"""bench.keys.code_version: the commit, dirty only when the *code* differs from it.

``make compare`` rewrites the tracked pages under ``reports/``; a stamp that counted them made
every later run ``<commit>+dirty`` although no code had changed. Each test builds a throwaway
git repository laid out like this one and asks for its version.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from bench.keys import GENERATED_PATHS, code_version

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def git(repo, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path):
    """A committed checkout with code, a generated report and a force-added result."""
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "run.py").write_text("x = 1\n")
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "task.md").write_text("old leaderboard\n")
    (tmp_path / "reports" / "task_survival.png").write_bytes(b"\x89PNG old")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "note.txt").write_text("kept on purpose\n")
    (tmp_path / "README.md").write_text("readme\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-f", ".")
    git(tmp_path, "commit", "-q", "-m", "init")
    return tmp_path


def test_a_clean_checkout_is_its_short_commit(repo):
    assert code_version(repo) == git(repo, "rev-parse", "--short", "HEAD")


def test_rewritten_reports_and_results_are_not_dirty(repo):
    """What ``make compare`` does to the tree: the same code, so the same stamp."""
    (repo / "reports" / "task.md").write_text("new leaderboard\n")
    (repo / "reports" / "task_survival.png").write_bytes(b"\x89PNG new")
    (repo / "reports" / "task_survival.svg").write_text("<svg/>")  # untracked, new
    (repo / "results" / "note.txt").write_text("changed\n")
    head = git(repo, "rev-parse", "--short", "HEAD")
    assert code_version(repo) == head
    git(repo, "add", "reports")  # staged, not committed: still generated output
    assert code_version(repo) == head


@pytest.mark.parametrize("path", ["bench/run.py", "README.md"])
def test_a_changed_tracked_file_outside_the_generated_folders_is_dirty(repo, path):
    head = git(repo, "rev-parse", "--short", "HEAD")
    (repo / path).write_text("changed\n")
    (repo / "reports" / "task.md").write_text("new leaderboard\n")
    assert code_version(repo) == f"{head}+dirty"
    git(repo, "add", path)  # staged counts too: the code that runs is not HEAD's
    assert code_version(repo) == f"{head}+dirty"


def test_a_deleted_code_file_is_dirty_and_untracked_files_are_not(repo):
    head = git(repo, "rev-parse", "--short", "HEAD")
    (repo / "scratch.py").write_text("not part of the code yet\n")
    assert code_version(repo) == head
    (repo / "bench" / "run.py").unlink()
    assert code_version(repo) == f"{head}+dirty"


def test_outside_a_checkout_it_is_unknown(tmp_path):
    assert code_version(tmp_path) == "unknown"


def test_the_generated_folders_are_the_ones_this_repository_writes():
    assert {"reports", "results"} <= set(GENERATED_PATHS)
