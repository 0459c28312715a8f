"""Files written whole or not at all (deepmf.files)."""

from __future__ import annotations

import pytest

from deepmf.files import replacing, write_text


def test_a_finished_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("old")
    with replacing(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".json" and tmp.name.startswith(".")
        tmp.write_text("new")
        assert target.read_text() == "old"  # not yet in place
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_an_interrupted_write_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    target = tmp_path / "top.csv"
    write_text(target, "user,rank\n")
    with pytest.raises(KeyboardInterrupt), replacing(target, sync=True) as tmp:
        tmp.write_text("half a ta")
        raise KeyboardInterrupt
    assert target.read_text() == "user,rank\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["top.csv"]


def test_nothing_appears_when_the_first_write_fails(tmp_path):
    with pytest.raises(ValueError), replacing(tmp_path / "curves.png"):
        raise ValueError("the plot failed")
    assert list(tmp_path.iterdir()) == []
