"""Symlinks never carry the archive (and its cleanup) outside the logs dir."""

from __future__ import annotations

import os


def test_symlinks_leading_outside_are_skipped_and_their_targets_kept(workspace, run_cli, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "12-x.log").write_text("precious, not ours\n")
    (outside / "12-linked.log").write_text("also precious\n")
    logs = workspace / "logs"
    os.symlink(outside, logs / "debug")  # a whole type folder elsewhere
    (logs / "builds").mkdir()
    os.symlink(outside / "12-linked.log", logs / "builds" / "12-linked.log")
    (logs / "builds" / "12-real.log").write_text("ours\n")
    os.symlink(logs / "builds" / "12-real.log", logs / "builds" / "12-alias.log")

    collected = run_cli("collect-logs", "12")
    assert [log["local_path"] for log in collected.json["logs"]] == ["builds/12-real.log"]
    reasons = {s["path"]: s["reason"] for s in collected.json["skipped"]}
    assert "outside the logs dir" in reasons["debug/"]
    assert "outside the logs dir" in reasons["builds/12-linked.log"]
    assert "already collected" in reasons["builds/12-alias.log"]

    archived = run_cli("archive", "12", "--no-commit")
    assert archived.exit_code == 0, archived.stdout
    assert archived.json["cleanup"]["deleted"] == ["builds/12-real.log"]
    assert (outside / "12-x.log").read_text() == "precious, not ours\n"
    assert (outside / "12-linked.log").read_text() == "also precious\n"
