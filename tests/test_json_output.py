"""Every command's ``--json`` output: JSON lines that docs/events.schema.json accepts.

The commands are listed from the typer app itself (hidden ones too), so a command added without
a run here fails ``test_every_command_prints_json_lines_the_schema_accepts``. The commands run
in this process through ``main()`` (as ``test_cli_contract`` does), in an order that gives each
one something to do: an upgrade, its rollback, a roll, a repair.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import click
import pytest
import typer
from coolify_migrate.apps.coolify_v3.demo import DemoInstance
from coolify_migrate.cli import app, main
from coolify_migrate.cli import commands as _every_command  # noqa: F401  (all declared)
from coolify_migrate.cli import output as cli_output
from jsonschema import Draft202012Validator
from support import REPO, LeakGuard

SCHEMA = json.loads((REPO / "docs" / "events.schema.json").read_text())
VALIDATOR = Draft202012Validator(SCHEMA)


def every_command() -> set[str]:
    """Each command that runs something, as typed after the program name (``backup list``)."""
    found: set[str] = set()

    def walk(group: click.Group, prefix: tuple[str, ...]) -> None:
        for name, cmd in group.commands.items():
            if isinstance(cmd, click.Group):
                walk(cmd, (*prefix, name))
            else:
                found.add(" ".join((*prefix, name)))

    root = typer.main.get_command(app)
    assert isinstance(root, click.Group)
    walk(root, ())
    return found


def run(
    capfd: pytest.CaptureFixture[str], leak_guard: LeakGuard, *args: str
) -> tuple[int, list[dict[str, Any]]]:
    """``coolify-migrate ARGS --json`` in this process: (exit code, the stdout lines parsed)."""
    capfd.readouterr()
    try:
        main([*args, "--json"])
        code = 0
    except SystemExit as stop:
        code = int(stop.code or 0)
    out, err = capfd.readouterr()
    leak_guard.record(f"json {' '.join(args[:2])} stdout", out)
    leak_guard.record(f"json {' '.join(args[:2])} stderr", err)
    lines = out.splitlines()
    assert lines, f"{args}: nothing on stdout (stderr: {err})"
    return code, [json.loads(line) for line in lines]


def schema_errors(doc: dict[str, Any]) -> list[str]:
    return [f"{e.json_path}: {e.message}" for e in VALIDATOR.iter_errors(doc)]


def test_the_schema_is_valid_draft_2020_12() -> None:
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_every_command_prints_json_lines_the_schema_accepts(
    demo: DemoInstance, tmp_path: Path, capfd: pytest.CaptureFixture[str], leak_guard: LeakGuard
) -> None:
    d = str(demo.data_dir)
    a = ("--data-dir", d, "--runtime", "none")
    manifest = tmp_path / "versions.json"
    shutil.copyfile(REPO / "versions.json", manifest)
    priv, pub = tmp_path / "sign.pem", tmp_path / "sign.pub.pem"
    runs: list[tuple[tuple[str, ...], int]] = [
        (("version",), 0),
        (("demo", "--data-dir", str(tmp_path / "fresh"), "--rows", "1"), 0),
        (("demo", "--data-dir", d), 3),  # refused: never overwrites an instance
        (("status", "--bogus", *a), 2),  # a usage error
        (("backup", "prune", *a), 2),  # a usage error the library raises
        (("status", *a), 0),
        (("plan", "--manifest", str(manifest), *a), 0),
        (("secrets", "audit", *a), 6),  # the demo's key is date-seeded
        (("secrets", "verify", *a), 0),
        (("secrets", "roll", "--dry-run", *a), 0),
        (("backup", "create", *a), 0),
        (("backup", "list", *a), 0),
        (("backup", "verify", *a), 0),
        (("backup", "prune", "--keep", "5", "--yes", *a), 0),
        (("stamp", "3.12.32", *a), 0),
        (("upgrade", "--manifest", str(manifest), "--yes", *a), 0),
        (("resume", *a), 0),
        (("rollback", "--last", "--yes", *a), 0),
        (("secrets", "roll", "--force", "--yes", *a), 0),
        (("secrets", "repair", "--dry-run", *a), 0),
        (("secrets", "repair", "--yes", *a), 0),
        (("start", *a), 0),
        (("restart", *a), 0),
        (("target-version", "--manifest", str(manifest), "--data-dir", d), 0),
        (("prepare-env", "--version", "3.12.36", *a), 0),
        (("manifest", "keygen", str(priv), str(pub)), 0),
        (("manifest", "sign", str(manifest), "--key", str(priv)), 0),
    ]
    covered: set[str] = set()
    kinds: set[str] = set()
    for args, expected in runs:
        code, docs = run(capfd, leak_guard, *args)
        assert code == expected, (args, docs[-1])
        for doc in docs:
            assert not schema_errors(doc), (args, doc, schema_errors(doc))
            kinds.add(doc["event"])
        last = docs[-1]
        assert [doc["ts"] for doc in docs] == sorted(doc["ts"] for doc in docs), args
        if expected in (0, 6):
            assert last["event"] == "result", (args, last)
            covered.add(last["command"])
            if expected == 6:
                assert last["weak"] is True
        else:
            assert last["event"] == "error" and last["exit_code"] == expected, (args, last)
            assert len(docs) == 1, (args, docs)  # refused before anything happened
    assert covered == every_command(), f"commands without a --json run: {every_command() - covered}"
    assert {"result", "error", "info", "progress", "phase"} <= kinds


def test_the_upgrade_streams_typed_events_and_ends_with_its_times(
    demo: DemoInstance, tmp_path: Path, capfd: pytest.CaptureFixture[str], leak_guard: LeakGuard
) -> None:
    code, docs = run(
        capfd,
        leak_guard,
        "upgrade",
        "--manifest",
        str(REPO / "versions.json"),
        "--yes",
        "--data-dir",
        str(demo.data_dir),
        "--runtime",
        "none",
    )
    assert code == 0
    phases = [doc["phase"] for doc in docs if doc["event"] == "phase"]
    assert phases[:2] == ["stop", "backup"] and "runtime" in phases
    bars = [doc for doc in docs if doc["event"] == "progress"]
    assert {"copying the database", "re-encrypting"} <= {b["phase"] for b in bars}
    for phase in {b["phase"] for b in bars}:  # each phase opens once and closes once
        assert [b["final"] for b in bars if b["phase"] == phase][-1] is True
    encrypt = [b for b in bars if b["phase"] == "re-encrypting" and b["final"]]
    assert encrypt[0]["unit"] == "rows" and encrypt[0]["done"] == encrypt[0]["total"]
    result = docs[-1]
    assert result["event"] == "result" and result["outcome"] == "upgraded"
    assert result["elapsed_s"] >= result["downtime_s"] > 0
    assert "downtime" in [d for d in docs if d["event"] == "info"][-1]["message"]


def test_a_rollback_streams_what_it_does(
    demo: DemoInstance, capfd: pytest.CaptureFixture[str], leak_guard: LeakGuard
) -> None:
    """A rollback stops the app, keeps a safety backup, checks every value and starts the app:
    with --json it says so as it goes, as an upgrade does, and ends with its result."""
    where = ("--data-dir", str(demo.data_dir), "--runtime", "none")
    code, _ = run(
        capfd, leak_guard, "upgrade", "--manifest", str(REPO / "versions.json"), "--yes", *where
    )
    assert code == 0
    code, docs = run(capfd, leak_guard, "rollback", "--last", "--yes", *where)
    assert code == 0
    bars = {doc["phase"] for doc in docs if doc["event"] == "progress"}
    assert {"copying the database", "checking every value's key"} <= bars, bars
    said = [doc["message"] for doc in docs if doc["event"] == "info"]
    assert any(m.startswith("restored prod.db_") for m in said), said
    assert docs[-1]["event"] == "result" and docs[-1]["command"] == "rollback"


def test_progress_events_are_rate_bounded(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """A million advances over ten (fake) seconds: about two events a second, plus the ends."""
    now = [1000.0]
    monkeypatch.setattr(cli_output.time, "monotonic", lambda: now[0])
    out = cli_output.TerminalOutput(json_mode=True, events=True)
    bar = out.progress("re-encrypting", 1_000_000, "values")
    capfd.readouterr()
    for _ in range(1_000_000):
        now[0] += 0.00001
        bar.advance()
    bar.close()
    docs = [json.loads(line) for line in capfd.readouterr().out.splitlines()]
    assert 15 <= len(docs) <= 10 / cli_output.JSON_EVERY_S + 2
    assert all(not schema_errors(doc) for doc in docs)
    assert docs[-1]["final"] and docs[-1]["done"] == 1_000_000
    middle = docs[len(docs) // 2]
    assert middle["rate"] == pytest.approx(100_000, rel=0.01)
    assert middle["eta_s"] == pytest.approx((1_000_000 - middle["done"]) / 100_000, rel=0.02)


@pytest.mark.parametrize(
    "doc",
    [
        {"event": "info", "message": "no ts"},
        {"ts": "2026-12-01 19:00:00", "event": "info", "message": "not ISO 8601 with ms"},
        {"ts": "2026-12-01T19:00:00.000Z", "event": "result", "command": "no-such-command"},
        {"ts": "2026-12-01T19:00:00.000Z", "event": "result", "command": "version"},
        {"ts": "2026-12-01T19:00:00.000Z", "event": "error", "error": "Refused", "message": "m"},
        {"ts": "2026-12-01T19:00:00.000Z", "event": "info", "message": "m", "extra": 1},
        {"ts": "2026-12-01T19:00:00.000Z", "event": "made-up"},
    ],
)
def test_the_schema_rejects_what_the_reference_does_not_describe(doc: dict[str, Any]) -> None:
    assert schema_errors(doc)
