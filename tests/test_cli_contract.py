"""The command line's contract: help everywhere, exit codes, and one-line errors with a hint.

``--help`` and unknown options are checked in-process for every command (fast); the rest runs
the real CLI in a subprocess.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click
import pytest
import typer
from coolify_migrate.cli import app, main
from coolify_migrate.cli import commands as _every_command  # noqa: F401  (all declared)
from coolify_migrate.core.errors import ExitCode

ERROR_LINE = re.compile(r"error: \S.* \(hint: \S.*\)")
INSTALLED_AT = "2023-07-18T10:09:02.980Z"
KNOWN_KEY = "YmU1Y2UxZWVkYjBmMTVkYTRmODAyYjk1"


def command_paths() -> list[tuple[str, ...]]:
    """Every command and subcommand, as the words that invoke it."""
    found: list[tuple[str, ...]] = [()]

    def walk(group: click.Group, prefix: tuple[str, ...]) -> None:
        for name, cmd in sorted(group.commands.items()):
            found.append((*prefix, name))
            if isinstance(cmd, click.Group):
                walk(cmd, (*prefix, name))

    root = typer.main.get_command(app)
    assert isinstance(root, click.Group)
    walk(root, ())
    return found


PATHS = command_paths()


def run_inline(
    capfd: pytest.CaptureFixture[str], leak_guard: Any, *args: str
) -> tuple[int, str, str]:
    """Call the CLI's main() in this process; returns (exit code, stdout, stderr)."""
    capfd.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as stop:
        code = int(stop.code or 0)
    out, err = capfd.readouterr()
    leak_guard.record(f"inline {' '.join(args)} stdout", out)
    leak_guard.record(f"inline {' '.join(args)} stderr", err)
    return code, out, err


def test_the_commands_the_issue_names_exist() -> None:
    assert {
        ("status",),
        ("plan",),
        ("upgrade",),
        ("resume",),
        ("rollback",),
        ("demo",),
        ("version",),
        ("backup", "create"),
        ("backup", "list"),
        ("backup", "verify"),
        ("backup", "prune"),
        ("secrets", "audit"),
        ("secrets", "roll"),
        ("secrets", "verify"),
    } <= set(PATHS)


def _command(path: tuple[str, ...]) -> click.Command:
    cmd: click.Command = typer.main.get_command(app)
    for word in path:
        assert isinstance(cmd, click.Group)
        cmd = cmd.commands[word]
    return cmd


@pytest.mark.parametrize(
    "path",
    [p for p in PATHS if p and not isinstance(_command(p), click.Group)],
    ids=lambda p: " ".join(p),
)
def test_every_command_takes_the_global_options(path: tuple[str, ...]) -> None:
    options = {opt for param in _command(path).params for opt in getattr(param, "opts", [])}
    assert {"--data-dir", "--json", "--debug"} <= options, f"{' '.join(path)}: {sorted(options)}"


# the commands that ask before they stop the app, log users out or delete something
ASKING = {
    ("rollback",),
    ("upgrade",),
    ("secrets", "roll"),
    ("secrets", "repair"),
    ("backup", "prune"),
}


@pytest.mark.parametrize(
    "path",
    [p for p in PATHS if p and not isinstance(_command(p), click.Group)],
    ids=lambda p: " ".join(p),
)
def test_yes_is_offered_exactly_where_something_is_asked(path: tuple[str, ...]) -> None:
    options = {opt for param in _command(path).params for opt in getattr(param, "opts", [])}
    assert ("--yes" in options) == (path in ASKING), " ".join(path)


def _wrong_values(param: click.Parameter) -> list[str]:
    """Values click must refuse for this parameter's type (none for free text and paths)."""
    kind = param.type
    if isinstance(kind, click.Choice):
        return ["no-such-choice"]
    if isinstance(kind, click.types.IntParamType | click.types.FloatParamType):
        return ["not-a-number"]
    return []


def _usage_cases() -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """(command path, the arguments that must be a usage error) for every command: each option
    that takes a value given without one, each typed option given a wrong value, and the
    command without its required arguments and options."""
    cases: list[tuple[tuple[str, ...], tuple[str, ...]]] = []
    for path in PATHS:
        if not path or isinstance(_command(path), click.Group):
            continue
        cmd = _command(path)
        required = [p for p in cmd.params if p.required]
        filled: list[str] = []
        for p in required:
            if isinstance(p, click.Argument):
                filled.append("x")
            else:
                filled += [p.opts[0], "1"]
        if required:
            cases.append((path, ()))  # nothing of what it requires
        for param in cmd.params:
            if not isinstance(param, click.Option) or param.is_flag or param.count:
                continue
            cases.append((path, (*filled, param.opts[0])))  # the option's value missing
            for wrong in _wrong_values(param):
                cases.append((path, (*filled, param.opts[0], wrong)))
    return cases


@pytest.mark.parametrize(
    ("path", "args"), _usage_cases(), ids=lambda v: " ".join(v) if isinstance(v, tuple) else v
)
def test_every_missing_or_wrong_option_is_a_usage_error(
    path: tuple[str, ...],
    args: tuple[str, ...],
    capfd: pytest.CaptureFixture[str],
    leak_guard: Any,
    tmp_path: Path,
) -> None:
    # every case names an install directory of its own, so a case click wrongly accepted could
    # only touch that; "--data-dir" itself comes last when it is the option under test
    place = () if "--data-dir" in args else ("--data-dir", str(tmp_path / "inst"))
    code, out, err = run_inline(capfd, leak_guard, *path, *place, *args)
    assert code == ExitCode.USAGE, (code, out, err)
    one_error_line(err)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "<root>")
def test_every_command_has_help(
    path: tuple[str, ...], capfd: pytest.CaptureFixture[str], leak_guard: Any
) -> None:
    code, out, err = run_inline(capfd, leak_guard, *path, "--help")
    assert code == 0, err
    assert "Usage:" in out
    assert err == ""
    if path:
        root = typer.main.get_command(app)
        assert isinstance(root, click.Group)
        cmd: click.Command = root
        for word in path:
            assert isinstance(cmd, click.Group)
            cmd = cmd.commands[word]
        assert (cmd.help or cmd.short_help or "").strip(), f"{' '.join(path)} has no help text"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "<root>")
def test_an_unknown_option_exits_2_with_one_line(
    path: tuple[str, ...], capfd: pytest.CaptureFixture[str], leak_guard: Any
) -> None:
    code, _, err = run_inline(capfd, leak_guard, *path, "--no-such-option")
    assert code == ExitCode.USAGE
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert ERROR_LINE.fullmatch(lines[0]), lines[0]
    assert "--no-such-option" in lines[0]


# -- the real CLI in a subprocess ---------------------------------------------------------------


def one_error_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert ERROR_LINE.fullmatch(lines[0]), lines[0]
    return lines[0]


def test_unknown_command_and_option(cli: Any) -> None:
    proc = cli("no-such-command")
    assert proc.returncode == 2
    assert "No such command" in one_error_line(proc.stderr)
    proc = cli("status", "--bogus")
    assert proc.returncode == 2
    assert "coolify-migrate status --help" in one_error_line(proc.stderr)


def test_no_arguments_prints_help_and_exits_2(cli: Any) -> None:
    proc = cli()
    assert proc.returncode == 2
    assert "Usage:" in proc.stdout
    assert "status" in proc.stdout


def test_version(cli: Any) -> None:
    proc = cli("version", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["coolify_migrate"]


def test_status_of_a_missing_data_dir_is_a_clean_report(tmp_path: Path, cli: Any) -> None:
    missing = tmp_path / "no" / "such" / "dir"
    proc = cli("status", "--data-dir", str(missing), "--json", "--runtime", "none")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    report = json.loads(proc.stdout)
    assert report["installed_version"] is None
    assert report["database"]["exists"] is False
    assert report["env_error"].startswith("no .env file at")
    assert report["env_keys"] == []
    assert not (tmp_path / "no").exists()  # a read-only command creates nothing

    proc = cli("status", "--data-dir", str(missing), "--runtime", "none")
    assert proc.returncode == 0, proc.stderr
    assert "installed version: unknown" in proc.stdout
    assert "no .env file at" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


def test_demo_into_an_existing_instance_is_refused_with_exit_3(
    tmp_path: Path, cli: Any, leak_guard: Any
) -> None:
    leak_guard.register(KNOWN_KEY)
    target = tmp_path / "coolify"
    first = cli("demo", "--data-dir", str(target), "--installed-at", INSTALLED_AT)
    assert first.returncode == 0, first.stderr
    env_before = (target / ".env").read_bytes()
    db_before = (target / "db" / "prod.db").read_bytes()

    proc = cli("demo", "--data-dir", str(target), "--installed-at", "2024-01-01T00:00:00Z")
    assert proc.returncode == ExitCode.REFUSED
    line = one_error_line(proc.stderr)
    assert "already exists" in line and "--data-dir" in line
    assert proc.stdout == ""
    assert (target / ".env").read_bytes() == env_before
    assert (target / "db" / "prod.db").read_bytes() == db_before

    proc = cli("demo", "--data-dir", str(target), "--json")
    assert proc.returncode == ExitCode.REFUSED
    error = json.loads(proc.stdout)
    assert error["error"] == "Refused"
    assert error["exit_code"] == 3
    assert error["hint"]
    one_error_line(proc.stderr)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--installed-at", "yesterday"], "is not an ISO-8601 time"),
        (["--installed-at", "2023-07-18T10:09:02"], "has no time zone"),
        (["--rows", "0"], "--rows must be at least 1"),
        (["--rows", "many"], "'many' is not a valid integer"),
        (["--version", "latest"], "is not a version number"),
    ],
)
def test_bad_input_is_a_usage_error(tmp_path: Path, cli: Any, args: list[str], needle: str) -> None:
    target = tmp_path / "coolify"
    proc = cli("demo", "--data-dir", str(target), *args)
    assert proc.returncode == ExitCode.USAGE, proc.stderr
    assert needle in one_error_line(proc.stderr)
    assert not (target / ".env").exists()


def test_an_unknown_profile_is_a_usage_error(tmp_path: Path, cli: Any) -> None:
    proc = cli(
        "status",
        "--data-dir",
        str(tmp_path),
        "--runtime",
        "none",
        env={"COOLIFY_MIGRATE_PROFILE": "wordpress"},
    )
    assert proc.returncode == ExitCode.USAGE
    assert "unknown app 'wordpress'" in one_error_line(proc.stderr)
    flag = cli("status", "--app", "wordpress", "--data-dir", str(tmp_path), "--runtime", "none")
    assert flag.returncode == ExitCode.USAGE
    assert "--app takes one of: coolify-v3, redash" in one_error_line(flag.stderr)


def test_debug_shows_a_traceback_but_still_ends_with_the_error_line(
    tmp_path: Path, cli: Any, leak_guard: Any
) -> None:
    leak_guard.register(KNOWN_KEY)
    target = tmp_path / "coolify"
    assert cli("demo", "--data-dir", str(target), "--installed-at", INSTALLED_AT).returncode == 0
    proc = cli("demo", "--data-dir", str(target), "--debug")
    assert proc.returncode == ExitCode.REFUSED
    assert "Traceback" in proc.stderr
    assert ERROR_LINE.fullmatch(proc.stderr.splitlines()[-1])


def test_version_help_once_and_a_missing_option_is_a_usage_error(
    tmp_path: Path, cli: Any, demo: Any
) -> None:
    from coolify_migrate import __version__

    shown = cli("--version")
    assert shown.returncode == 0 and shown.stdout.strip() == f"coolify-migrate {__version__}"
    bare = cli()
    assert bare.returncode == ExitCode.USAGE
    assert (bare.stdout + bare.stderr).count("Usage:") == 1, "the help is printed once"
    prune = cli("backup", "prune", "--data-dir", str(demo.data_dir), "--runtime", "none")
    assert prune.returncode == ExitCode.USAGE
    assert "needs --keep N" in one_error_line(prune.stderr)
    latest = cli("plan", "--to", "latest", "--data-dir", str(demo.data_dir), "--runtime", "none")
    assert latest.returncode == 0, latest.stderr
    assert "3.12.32 -> 3.12.36" in latest.stdout


def test_options_every_command_takes_may_come_before_the_command(cli: Any, demo: Any) -> None:
    before = cli("--data-dir", str(demo.data_dir), "--runtime", "none", "--json", "status")
    after = cli("status", "--data-dir", str(demo.data_dir), "--runtime", "none", "--json")
    assert before.returncode == 0 == after.returncode, before.stderr
    first, second = (json.loads(r.stdout) for r in (before, after))
    assert first.pop("ts") and second.pop("ts")  # when each ran
    assert first == second
    nested = cli(f"--data-dir={demo.data_dir}", "--runtime", "none", "secrets", "verify")
    assert nested.returncode == 0 and "every value decrypts" in nested.stdout


def test_no_help_shows_a_default_of_none(cli: Any) -> None:
    commands = [c for c in app.registered_commands if c.name and not c.hidden]
    names = [(c.name,) for c in commands] + [
        (group.name, c.name)
        for group in app.registered_groups
        for c in group.typer_instance.registered_commands
        if group.name and c.name
    ]
    assert len(names) > 15
    for name in names:
        shown = cli(*name, "--help")
        assert shown.returncode == 0, name
        assert "default: None" not in shown.stdout, name


def test_shell_completion(cli: Any) -> None:
    shown = cli("--show-completion", "bash")
    assert shown.returncode == 0 and "complete" in shown.stdout and "coolify" in shown.stdout
    words = cli(
        env={
            "_COOLIFY_MIGRATE_COMPLETE": "complete_bash",
            "COMP_WORDS": "coolify-migrate secrets ro",
            "COMP_CWORD": "2",
        }
    )
    assert words.returncode == 0 and words.stdout.split() == ["roll"], words.stdout
    choices = cli(
        env={
            "_COOLIFY_MIGRATE_COMPLETE": "complete_bash",
            "COMP_WORDS": "coolify-migrate status --runtime ",
            "COMP_CWORD": "3",
        }
    )
    assert choices.stdout.split() == ["auto", "docker", "compose", "none"], choices.stdout
