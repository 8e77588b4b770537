"""What coolify_migrate.config.envfile writes is what a real container receives through ``--env-file``.

Coolify v3 starts its container with ``docker run --env-file ~/coolify/.env``, which takes every
value literally. These tests write values with ``EnvFile`` and read them back, byte for byte,
from inside a real container.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from coolify_migrate.apps.coolify_v3.profile import new_key
from coolify_migrate.config.envfile import EnvFile
from coolify_migrate.core.errors import EnvFileError

# Values a .env really holds, chosen for the characters parsers disagree about (= / + : @ %).
AWKWARD = {
    "COOLIFY_DATABASE_URL": "file:../db/prod.db",
    "HAS_EQUALS": "a=b",
    "BASE64": "YmU1Y2Ux+/ZWVk/YjBm+Q==",
    "URL": "postgres://app:s3cr3t@db:5432/app",
    "PERCENT": "100%",
    "LIST": "a,b,c",
    "DASHES": "-leading-and-trailing-",
    "TRAILING_EQUALS": "x==",
    "EMPTY": "",
}


def _read_in_container(docker: Any, image: str, env_file: Path, names: list[str]) -> list[bytes]:
    """Each variable's bytes as the container's shell sees them (NUL-separated, so any byte but
    NUL survives)."""
    script = 'printf "%s\\0" ' + " ".join(f'"${{{n}}}"' for n in names)
    proc = docker.raw(
        "run",
        "--rm",
        "--network",
        "none",
        "--env-file",
        str(env_file),
        image,
        "sh",
        "-c",
        script,
        record=False,
    )
    parts: list[bytes] = proc.stdout.split(b"\0")
    assert parts[-1] == b""
    return parts[:-1]


def _sourced_in_container(docker: Any, image: str, env_file: Path, names: list[str]) -> list[bytes]:
    """The same, when a POSIX shell sources the file (as scripts around Docker often do)."""
    script = '. /run/app.env; printf "%s\\0" ' + " ".join(f'"${{{n}}}"' for n in names)
    proc = docker.raw(
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        f"{env_file}:/run/app.env:ro",
        image,
        "sh",
        "-c",
        script,
        record=False,
    )
    parts: list[bytes] = proc.stdout.split(b"\0")
    return parts[:-1]


def test_values_written_by_envfile_arrive_byte_identical(
    tmp_path: Path, docker: Any, test_images: Any, leak_guard: Any
) -> None:
    env_path = tmp_path / ".env"
    env_path.write_text("# written by the installer\nTAG=3.12.32\nCOOLIFY_HOSTED_ON=docker\n")
    env_path.chmod(0o600)
    key = new_key()
    leak_guard.register(key)
    env = EnvFile.load(env_path)
    env.set("COOLIFY_SECRET_KEY", key)
    for name, value in AWKWARD.items():
        env.set(name, value)
    env.save()

    expected = {
        "TAG": "3.12.32",
        "COOLIFY_HOSTED_ON": "docker",
        "COOLIFY_SECRET_KEY": key.reveal(),
        **AWKWARD,
    }
    # Unquoted on disk: --env-file would keep quotes as part of the value.
    text = env_path.read_text()
    for name, value in expected.items():
        assert f"\n{name}={value}\n" in f"\n{text}"
    got = _read_in_container(docker, test_images.base, env_path, list(expected))
    assert got == [v.encode() for v in expected.values()]
    assert len(got[2]) == 32  # the generated key: 32 bytes, as v3's AES-256 needs


def test_the_container_sees_quotes_that_dotenv_strips(
    tmp_path: Path, docker: Any, test_images: Any
) -> None:
    """Why unsafe values are refused: parsers disagree on them. Shown on a hand-written file."""
    env_path = tmp_path / ".env"
    env_path.write_text('QUOTED="value"\nSPACED=two words\n')
    ours = EnvFile.load(env_path)
    assert ours.get("QUOTED") == "value"  # dotenv (and sh) strip the quotes ...
    got = _read_in_container(docker, test_images.base, env_path, ["QUOTED", "SPACED"])
    assert got == [b'"value"', b"two words"]  # ... docker keeps them


@pytest.mark.parametrize(
    "value",
    [
        '"value"',
        "two words",
        "it's",
        "$HOME",
        "back\\slash",
        "a\tb",
        "line\nbreak",
        "#comment",
        "semi;colon",
        "`id`",
        "pässwörd",
    ],
)
def test_unsafe_values_are_refused_and_the_file_is_untouched(tmp_path: Path, value: str) -> None:
    env_path = tmp_path / ".env"
    env_path.write_bytes(b"TAG=3.12.32\n")
    env = EnvFile.load(env_path)
    with pytest.raises(EnvFileError, match="refusing to write"):
        env.set("VALUE", value)
    assert env_path.read_bytes() == b"TAG=3.12.32\n"
    assert not env.changed()


def test_a_crlf_file_rewritten_by_the_module_hands_no_cr_to_the_container(
    tmp_path: Path, docker: Any, test_images: Any
) -> None:
    env_path = tmp_path / ".env"
    env_path.write_bytes(b"TAG=3.12.32\r\nCOOLIFY_HOSTED_ON=docker\r\n")
    names = ["TAG", "COOLIFY_HOSTED_ON"]

    # Before: `docker run --env-file` itself drops the CR (Go's line scanner does), but a shell
    # that sources the same file keeps it in every value.
    assert _read_in_container(docker, test_images.base, env_path, names) == [b"3.12.32", b"docker"]
    assert _sourced_in_container(docker, test_images.base, env_path, names) == [
        b"3.12.32\r",
        b"docker\r",
    ]

    env = EnvFile.load(env_path)
    assert env.get("TAG") == "3.12.32"
    env.set("COOLIFY_AUTO_UPDATE", "false")
    env.save()

    assert b"\r" not in env_path.read_bytes()
    names.append("COOLIFY_AUTO_UPDATE")
    expected = [b"3.12.32", b"docker", b"false"]
    assert _read_in_container(docker, test_images.base, env_path, names) == expected
    assert _sourced_in_container(docker, test_images.base, env_path, names) == expected


def test_a_bom_is_dropped_on_write(tmp_path: Path, docker: Any, test_images: Any) -> None:
    env_path = tmp_path / ".env"
    env_path.write_bytes(b"\xef\xbb\xbfTAG=3.12.32\nCOOLIFY_HOSTED_ON=docker\n")
    names = ["TAG", "COOLIFY_HOSTED_ON"]
    # docker skips a leading BOM; sh reads the first line as a command, not an assignment.
    assert _read_in_container(docker, test_images.base, env_path, names) == [b"3.12.32", b"docker"]
    assert _sourced_in_container(docker, test_images.base, env_path, names) == [b"", b"docker"]

    env = EnvFile.load(env_path)
    env.set("COOLIFY_AUTO_UPDATE", "false")
    env.save()
    assert env_path.read_bytes().startswith(b"TAG=3.12.32\n")
    assert _sourced_in_container(docker, test_images.base, env_path, names) == [
        b"3.12.32",
        b"docker",
    ]


def test_docker_rejects_an_export_prefix_which_the_module_reports(
    tmp_path: Path, docker: Any, test_images: Any
) -> None:
    env_path = tmp_path / ".env"
    env_path.write_text("TAG=3.12.32\nexport COOLIFY_HOSTED_ON=docker\n")
    env_path.chmod(0o600)  # private, as a .env must be: the only warning is about the prefix
    refused = docker.raw(
        "run",
        "--rm",
        "--network",
        "none",
        "--env-file",
        str(env_path),
        test_images.base,
        "true",
        check=False,
    )
    assert refused.returncode != 0
    assert b"export COOLIFY_HOSTED_ON" in refused.stderr
    env = EnvFile.load(env_path)
    assert env.get("COOLIFY_HOSTED_ON") == "docker"  # dotenv reads it ...
    assert env.warnings() == [  # ... so the module says what docker will do
        "line 2: 'export COOLIFY_HOSTED_ON': docker --env-file rejects the file"
    ]
