"""coolify_migrate.config.envfile: the behaviours its docstring defines, on real files."""

from __future__ import annotations

import os
import shutil
import stat
import string
import subprocess
from pathlib import Path

import pytest
from coolify_migrate.config.envfile import EnvFile
from coolify_migrate.core.errors import EnvFileError, ExitCode
from coolify_migrate.core.secret import Secret
from hypothesis import given, settings
from hypothesis import strategies as st

# Comments, blank lines, an export prefix, quoting, odd spacing, an unknown key, a bare name and
# no final newline: everything the tool must leave exactly as it found it.
RICH = (
    "# Coolify configuration\n"
    "\n"
    "export TAG=3.12.32\n"
    'QUOTED="x y"\n'
    "  INDENTED = spaced \n"
    "UNKNOWN_TO_US=keep#this\n"
    "EMPTY=\n"
    "BARE\n"
    "# trailing comment\n"
    "COOLIFY_AUTO_UPDATE=false"
)


def write(tmp_path: Path, data: bytes | str, name: str = ".env") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    path.chmod(0o600)
    return path


def test_reads_keys_and_values(tmp_path: Path) -> None:
    env = EnvFile.load(write(tmp_path, RICH))
    assert env.keys() == [
        "TAG",
        "QUOTED",
        "INDENTED",
        "UNKNOWN_TO_US",
        "EMPTY",
        "BARE",
        "COOLIFY_AUTO_UPDATE",
    ]
    assert env.get("TAG") == "3.12.32"
    assert env.get("QUOTED") == "x y"
    assert env.get("EMPTY") == ""
    assert env.get("BARE") is None
    assert env.get("MISSING") is None
    assert env.secret("EMPTY") is None
    # Kept, but docker --env-file would refuse the file because of it.
    assert env.warnings() == ["line 3: 'export TAG': docker --env-file rejects the file"]


def test_setting_one_key_preserves_every_other_byte(tmp_path: Path) -> None:
    path = write(tmp_path, RICH)
    env = EnvFile.load(path)
    assert env.set("UNKNOWN_TO_US", "changed")
    env.save()
    # Still no final newline: only the line that changed differs.
    assert path.read_text() == RICH.replace("UNKNOWN_TO_US=keep#this", "UNKNOWN_TO_US=changed")


def test_an_export_prefix_survives_an_update(tmp_path: Path) -> None:
    path = write(tmp_path, RICH)
    env = EnvFile.load(path)
    env.set("TAG", "3.12.36")
    env.save()
    assert "\nexport TAG=3.12.36\n" in path.read_text()
    assert EnvFile.load(path).get("TAG") == "3.12.36"


def test_appending_adds_the_missing_final_newline(tmp_path: Path) -> None:
    path = write(tmp_path, "TAG=3.12.32")
    env = EnvFile.load(path)
    env.set("COOLIFY_HOSTED_ON", "docker")
    env.save()
    assert path.read_bytes() == b"TAG=3.12.32\nCOOLIFY_HOSTED_ON=docker\n"


def test_setting_the_same_value_reports_no_change(tmp_path: Path) -> None:
    path = write(tmp_path, "TAG=3.12.32\n")
    env = EnvFile.load(path)
    assert env.set("TAG", "3.12.32") is False
    assert not env.changed()
    assert env.set("TAG", "3.12.33") is True
    assert env.changed()


def test_a_quoted_value_is_rewritten_unquoted(tmp_path: Path) -> None:
    # Same value to dotenv, but docker --env-file would pass the quotes on.
    env = EnvFile.load(write(tmp_path, 'TAG="3.12.32"\n'))
    assert env.set("TAG", "3.12.32") is True
    assert env.render() == "TAG=3.12.32\n"


def test_set_default_never_overwrites_a_populated_key(tmp_path: Path) -> None:
    env = EnvFile.load(write(tmp_path, "KEEP=old\nEMPTY=\n"))
    assert env.set_default("KEEP", "new") is False
    assert env.set_default("EMPTY", "filled") is True
    assert env.set_default("MISSING", "added") is True
    assert env.render() == "KEEP=old\nEMPTY=filled\nMISSING=added\n"


def test_remove(tmp_path: Path) -> None:
    env = EnvFile.load(write(tmp_path, "A=1\nB=2\n"))
    assert env.remove("A") is True
    assert env.remove("A") is False
    assert env.render() == "B=2\n"


# -- duplicates ---------------------------------------------------------------------------------


def test_lines_are_counted_past_blank_lines(tmp_path: Path) -> None:
    env = EnvFile.load(write(tmp_path, "# c\n\n\nA=1\n\n  B=x\\\nA=2\n"))
    assert env.duplicates() == {"A": [4, 7]}
    assert "line 6: B ends with a backslash" in " ".join(env.warnings())


def test_a_duplicate_key_is_refused_naming_its_lines(tmp_path: Path) -> None:
    env = EnvFile.load(write(tmp_path, "COOLIFY_SECRET_KEY=aaa\nTAG=1\nCOOLIFY_SECRET_KEY=bbb\n"))
    assert env.duplicates() == {"COOLIFY_SECRET_KEY": [1, 3]}
    assert env.keys() == ["COOLIFY_SECRET_KEY", "TAG"]
    assert any("COOLIFY_SECRET_KEY is defined on lines 1, 3" in w for w in env.warnings())
    for action in (
        lambda: env.get("COOLIFY_SECRET_KEY"),
        lambda: env.set("COOLIFY_SECRET_KEY", "ccc"),
        lambda: env.remove("COOLIFY_SECRET_KEY"),
    ):
        with pytest.raises(EnvFileError) as info:
            action()
        assert "defined 2 times" in info.value.message
        assert "lines 1, 3" in info.value.message
        assert "exactly one" in info.value.hint
    assert env.get("TAG") == "1"  # other keys stay usable


# -- line endings, BOM, backslashes -------------------------------------------------------------


def test_crlf_is_read_and_rewritten_as_lf(tmp_path: Path) -> None:
    path = write(tmp_path, b"# comment\r\nTAG=3.12.32\r\nCOOLIFY_HOSTED_ON=docker\r\n")
    env = EnvFile.load(path)
    assert env.get("TAG") == "3.12.32"
    assert env.get("COOLIFY_HOSTED_ON") == "docker"
    assert any("CRLF" in w for w in env.warnings())
    env.set("TAG", "3.12.33")
    env.save()
    assert path.read_bytes() == b"# comment\nTAG=3.12.33\nCOOLIFY_HOSTED_ON=docker\n"
    assert EnvFile.load(path).warnings() == []


def test_a_bom_is_ignored_on_read_and_dropped_on_write(tmp_path: Path) -> None:
    path = write(tmp_path, b"\xef\xbb\xbfTAG=3.12.32\nB=2\n")
    env = EnvFile.load(path)
    assert env.keys() == ["TAG", "B"]
    assert env.get("TAG") == "3.12.32"
    assert any("BOM" in w for w in env.warnings())
    assert env.changed()  # saving alone would remove the BOM
    env.save()
    assert path.read_bytes() == b"TAG=3.12.32\nB=2\n"


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX sh")
def test_a_value_ending_in_a_backslash_is_reported_and_sh_shows_why(tmp_path: Path) -> None:
    path = write(tmp_path, "A=x\\\nB=2\n")
    env = EnvFile.load(path)
    assert env.get("A") == "x\\"  # dotenv (and docker --env-file) read it literally
    assert env.get("B") == "2"
    assert any("line 1: A ends with a backslash" in w for w in env.warnings())
    sourced = subprocess.run(
        ["sh", "-c", '. "$1"; printf "%s|%s" "$A" "$B"', "sh", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert sourced.stdout == "xB=2|"  # sh joined the two lines
    with pytest.raises(EnvFileError):
        env.set("C", "y\\")  # the tool never writes one
    env.set("A", "y")
    env.save()
    assert path.read_text() == "A=y\nB=2\n"


# -- what may be written ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        '"quoted"',
        "'single'",
        "two words",
        " lead",
        "$HOME",
        "${X}",
        "back\\slash",
        "tab\there",
        "new\nline",
        "cr\rhere",
        "#hash",
        "a;b",
        "`id`",
        "a|b",
        "a&b",
        "a*b",
        "pässwörd",
        "密码",
        "a\0b",
    ],
)
def test_unsafe_values_are_refused(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, "TAG=3.12.32\n")
    env = EnvFile.load(path)
    with pytest.raises(EnvFileError) as info:
        env.set("VALUE", value)
    assert info.value.exit_code == ExitCode.REFUSED
    assert "refusing to write VALUE" in info.value.message
    assert "\n" not in info.value.message
    assert value not in info.value.message  # the value may be a secret: never echoed
    assert not env.changed()
    assert path.read_bytes() == b"TAG=3.12.32\n"


@pytest.mark.parametrize("key", ["", "1ABC", "A-B", "A B", "A=B", "export X", "ÄKEY"])
def test_unsafe_key_names_are_refused(tmp_path: Path, key: str) -> None:
    env = EnvFile.load(write(tmp_path, ""))
    with pytest.raises(EnvFileError, match="key name"):
        env.set(key, "v")


SAFE_CHARS = string.ascii_letters + string.digits + "_-.,/:@+=%"


@settings(max_examples=60, deadline=None)
@given(value=st.text(alphabet=SAFE_CHARS, max_size=80))
def test_every_safe_value_round_trips(tmp_path_factory: pytest.TempPathFactory, value: str) -> None:
    path = write(tmp_path_factory.mktemp("env"), "# keep\nTAG=3.12.32\n")
    env = EnvFile.load(path)
    env.set("VALUE", value)
    env.set("SECRET", Secret(value))
    env.save()
    again = EnvFile.load(path)
    assert again.get("VALUE") == value
    assert again.get("SECRET") == value
    assert again.get("TAG") == "3.12.32"
    assert path.read_text().startswith("# keep\nTAG=3.12.32\n")


def test_a_secret_is_written_as_its_value(tmp_path: Path, leak_guard: object) -> None:
    key = Secret("k" * 32)
    path = write(tmp_path, "")
    env = EnvFile.load(path)
    env.set("COOLIFY_SECRET_KEY", key)
    env.save()
    assert path.read_text() == f"COOLIFY_SECRET_KEY={'k' * 32}\n"


# -- the file itself ----------------------------------------------------------------------------


def test_missing_and_unreadable_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(EnvFileError) as info:
        EnvFile.load(tmp_path / "nope" / ".env")
    assert "no .env file at" in info.value.message
    assert "--data-dir" in info.value.hint
    with pytest.raises(EnvFileError, match="not UTF-8"):
        EnvFile.load(write(tmp_path, b"TAG=\xff\xfe\n"))
    (tmp_path / "dir.env").mkdir()
    with pytest.raises(EnvFileError, match="cannot read"):
        EnvFile.load(tmp_path / "dir.env")


@pytest.mark.parametrize(
    ("mode", "after"), [(0o600, 0o600), (0o400, 0o400), (0o640, 0o600), (0o666, 0o600)]
)
def test_the_mode_is_kept_minus_what_lets_others_read_the_keys(
    tmp_path: Path, mode: int, after: int
) -> None:
    path = write(tmp_path, "TAG=3.12.32\n")
    path.chmod(mode)
    env = EnvFile.load(path)
    told: list[str] = []
    env.on_tighten = told.append
    assert any("others may read" in n for n in env.warnings()) == (mode != after)
    env.set("TAG", "3.12.33")
    env.save()
    assert stat.S_IMODE(path.stat().st_mode) == after
    assert len(told) == (1 if mode != after else 0)
    assert all(f"mode {mode:04o}" in t and "tightened to 0600" in t for t in told)


def test_a_new_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    env = EnvFile(path, "")
    env.set("COOLIFY_SECRET_KEY", "k" * 32)
    env.save()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_the_owner_is_kept(tmp_path: Path) -> None:
    path = write(tmp_path, "TAG=3.12.32\n")
    os.chown(path, 4321, 4322)
    env = EnvFile.load(path)
    env.set("TAG", "3.12.33")
    env.save()
    st_ = path.stat()
    assert (st_.st_uid, st_.st_gid) == (4321, 4322)


def test_a_symlinked_env_is_written_through_to_its_target(tmp_path: Path) -> None:
    real_dir = tmp_path / "elsewhere"
    real_dir.mkdir()
    target = write(real_dir, "TAG=3.12.32\n", name="coolify.env")
    target.chmod(0o640)
    link = tmp_path / ".env"
    link.symlink_to(os.path.relpath(target, tmp_path))
    env = EnvFile.load(link)
    env.set("TAG", "3.12.33")
    env.save()
    assert link.is_symlink()
    assert os.readlink(link) == os.path.relpath(target, tmp_path)
    assert target.read_text() == "TAG=3.12.33\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600  # was 0640: others lose read access
    assert sorted(p.name for p in real_dir.iterdir()) == ["coolify.env"]  # no temp file left


def test_save_is_a_durable_replace_with_named_checkpoints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trace = tmp_path / "trace.txt"
    monkeypatch.setenv("COOLIFY_MIGRATE_TRACE", str(trace))
    path = write(tmp_path, "TAG=3.12.32\n")
    before = path.stat().st_ino
    env = EnvFile.load(path)
    env.set("TAG", "3.12.33")
    env.save(checkpoint="env")
    assert trace.read_text().split() == ["env:before-replace#1", "env:done#1"]
    assert path.stat().st_ino != before  # replaced, not rewritten in place
    assert sorted(p.name for p in tmp_path.iterdir()) == [".env", "trace.txt"]
