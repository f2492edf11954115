"""Which workdir files are uploaded: .skyignore, else .gitignore; never .git/."""

from __future__ import annotations

from skybroker.runtime.ignore import list_files


def make(root, files):
    for f in files:
        p = root / f
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("x")


def test_gitignore_rules(tmp_path):
    make(tmp_path, ["a.py", "b.log", "sub/c.log", "sub/keep.log", "build/x.o", "data/raw/r.csv",
                    "data/d.csv", ".git/HEAD", "docs/build/y"])
    (tmp_path / ".gitignore").write_text("# comment\n\n*.log\n!keep.log\n/build/\ndata/raw\n")
    assert list_files(tmp_path) == [".gitignore", "a.py", "data/d.csv", "docs/build/y", "sub/keep.log"]


def test_skyignore_wins_over_gitignore(tmp_path):
    make(tmp_path, ["a.py", "b.log", "big.bin", "deep/x/big.bin"])
    (tmp_path / ".gitignore").write_text("*.log\n")
    (tmp_path / ".skyignore").write_text("*.bin\n")
    assert list_files(tmp_path) == [".gitignore", ".skyignore", "a.py", "b.log"]


def test_no_ignore_file_uploads_everything_but_git(tmp_path):
    make(tmp_path, ["a", "d/b", ".git/config"])
    assert list_files(tmp_path) == ["a", "d/b"]
