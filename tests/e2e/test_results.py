"""``results`` through the installed CLI after a real sweep ran: a point is found again by
the value it was swept with, rows sort, and piped tables (``results``, ``show``) keep every
value whole."""
from __future__ import annotations

import json

import yaml

from tests.conftest import make_config, run_cli

LONG = "a-long-returned-value-" * 8  # 176 characters: wider than any default table


def test_a_sweep_point_is_found_again_sorted_and_printed_whole(ws, tasks_dir, tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump(make_config(
        tasks_dir, "r/${lr}-${flag}", [{"id": "train", "method": "Ledger"}], lr=0.5,
        flag=True, value=LONG)))
    submitted = run_cli("submit", str(base), "--sweep", "lr=1e-3,0.1", "--sweep",
                        "flag=yes,true", "--ready", ws=ws, cwd=tmp_path)
    assert submitted.returncode == 0, submitted.stderr
    assert run_cli("worker", "--exit-when-empty", ws=ws).returncode == 0

    found = run_cli("results", "--where", "lr=1e-3", "--where", "flag=yes", "--format",
                    "json", ws=ws)
    assert found.returncode == 0, found.stderr
    [row] = json.loads(found.stdout)
    assert row["name"] == "base-lr0.001-flag_yes" and row["results"]["train"]["value"] == LONG
    boolean = json.loads(run_cli("results", "--where", "flag=true", "--format", "json",
                                 ws=ws).stdout)
    assert [r["name"] for r in boolean] == ["base-lr0.001-flag_true", "base-lr0.1-flag_true"]

    typo = run_cli("results", "--where", "lrr=1e-3", ws=ws)
    assert typo.returncode == 2
    assert "--where lrr: no experiment listed has this key; did you mean lr?" in typo.stderr

    table = run_cli("results", "--sort", "lr", "--desc", ws=ws)  # piped: nothing is cut
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["name", "┃", "state", "┃", "flag", "┃", "lr", "┃",
                                "train.value", "┃", "train.task"]
    assert [line.split()[0] for line in lines[2:]] == [
        "base-lr0.1-flag_true", "base-lr0.1-flag_yes", "base-lr0.001-flag_true",
        "base-lr0.001-flag_yes"]  # ties keep the name order
    assert all(LONG in line for line in lines[2:]) and "…" not in table.stdout

    show = run_cli("show", "base-lr0.1-flag_yes", ws=ws)
    assert show.returncode == 0, show.stderr
    assert LONG in show.stdout and "…" not in show.stdout
