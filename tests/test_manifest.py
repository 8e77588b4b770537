"""coolify_migrate.config.manifest and coolify_migrate.core.versions: our schema, Coolify's two formats, bad input."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from coolify_migrate.apps import get_profile
from coolify_migrate.config import manifest
from coolify_migrate.core.errors import ExitCode, ManifestError, UsageError
from coolify_migrate.core.versions import normalize, parse_version
from packaging.version import Version

REPO = Path(__file__).resolve().parent.parent
PROFILE = get_profile("coolify-v3")


def parse_doc(doc: Any, source: str = "test.json") -> manifest.Manifest:
    return manifest.parse(json.dumps(doc).encode(), PROFILE, source=source)


def own(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema": 1,
        "app": "coolify-v3",
        "manifest_version": 3,
        "latest": "3.12.36",
        "releases": [
            {"version": "3.12.32"},
            {"version": "3.12.33", "required_stop": True},
            {"version": "3.12.36"},
        ],
    }
    doc.update(overrides)
    return doc


# -- versions -----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["v3.12.32", "3.12.32", "V3.12.32", " v3.12.32\n"])
def test_a_leading_v_is_normalised_away(text: str) -> None:
    assert normalize(text) == "3.12.32"
    assert parse_version(text) == Version("3.12.32")


@pytest.mark.parametrize("text", ["", "latest", "3.12.x", "v", "3..12"])
def test_a_bad_version_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_version(text, what="--to")
    assert info.value.exit_code == ExitCode.USAGE
    assert info.value.message.startswith("--to ")
    assert "3.12.36" in info.value.hint


def test_image_tags_have_no_v() -> None:
    assert PROFILE.image_for(parse_version("v3.12.32")) == "ghcr.io/coollabsio/coolify:3.12.32"
    assert PROFILE.fallback_images_for(parse_version("v3.12.32")) == ("coollabsio/coolify:3.12.32",)


# -- the repository's versions.json -------------------------------------------------------------


def test_the_shipped_versions_json() -> None:
    m = manifest.load(str(REPO / "versions.json"), PROFILE)
    assert m.fmt == "coolify-migrate/1"
    assert m.app == "coolify-v3"
    assert m.manifest_version == 1
    assert m.latest == Version("3.12.36")
    assert [str(r.version) for r in m.releases] == [
        "3.12.30",
        "3.12.31",
        "3.12.32",
        "3.12.33",
        "3.12.34",
        "3.12.35",
        "3.12.36",
    ]
    stops = [str(r.version) for r in m.releases if r.required_stop]
    withdrawn = [str(r.version) for r in m.releases if r.withdrawn]
    assert (stops, withdrawn) == (["3.12.33"], ["3.12.34"])
    assert "key" in m.release(Version("3.12.33")).notes  # type: ignore[union-attr]
    for r in m.releases:
        assert r.image == f"ghcr.io/coollabsio/coolify:{r.version}"
        assert r.fallbacks == (f"coollabsio/coolify:{r.version}",)
    assert m.release(Version("3.12.37")) is None
    assert json.loads(m.raw) == json.loads((REPO / "versions.json").read_bytes())


# -- our schema ---------------------------------------------------------------------------------


def test_own_schema_defaults_come_from_the_profile() -> None:
    m = parse_doc(
        own(releases=[{"version": "v3.12.36"}, {"version": "3.12.33"}], latest="v3.12.36")
    )
    assert [str(r.version) for r in m.releases] == ["3.12.33", "3.12.36"]  # sorted, v dropped
    r33 = m.release(Version("3.12.33"))
    assert r33 is not None and r33.required_stop  # the profile's required stop
    r36 = m.release(Version("3.12.36"))
    assert r36 is not None
    assert r36.images == ("ghcr.io/coollabsio/coolify:3.12.36", "coollabsio/coolify:3.12.36")
    assert not r36.required_stop and not r36.withdrawn


def test_own_schema_explicit_fields_win() -> None:
    m = parse_doc(
        own(
            releases=[
                {
                    "version": "3.12.36",
                    "image": "registry.example/coolify:3.12.36",
                    "fallbacks": [],
                    "withdrawn": True,
                    "notes": "broken",
                },
            ],
            latest="3.12.36",
            expires="2030-01-01T00:00:00Z",
        )
    )
    r = m.releases[0]
    assert (r.image, r.fallbacks, r.withdrawn, r.notes) == (
        "registry.example/coolify:3.12.36",
        (),
        True,
        "broken",
    )
    assert m.expires is not None and m.expires.year == 2030 and m.expires.tzinfo is not None
    assert m.as_dict()["releases"][0]["version"] == "3.12.36"


def test_latest_defaults_to_the_highest_release() -> None:
    doc = own()
    del doc["latest"]
    assert parse_doc(doc).latest == Version("3.12.36")


# -- Coolify's own formats ----------------------------------------------------------------------


def test_coolify_v3_versions_json() -> None:
    m = parse_doc({"coolify": {"main": {"version": "3.12.36"}}})
    assert m.fmt == "coolify-v3"
    assert m.latest == Version("3.12.36")
    # It names only the latest: the profile adds the required stop below it.
    assert [(str(r.version), r.required_stop) for r in m.releases] == [
        ("3.12.33", True),
        ("3.12.36", False),
    ]
    assert m.releases[-1].image == "ghcr.io/coollabsio/coolify:3.12.36"
    assert m.manifest_version is None


def test_coolify_v3_versions_json_below_the_stop() -> None:
    m = parse_doc({"coolify": {"main": {"version": "v3.12.32"}}})
    assert [str(r.version) for r in m.releases] == ["3.12.32"]


def test_coolify_v4_versions_json_is_read_by_key_not_position() -> None:
    # v4's installer parses this file by word position; key order must not matter here.
    doc = {
        "traefik": {"v3.6": "3.6.1"},
        "coolify": {
            "sentinel": {"version": "0.0.16"},
            "helper": {"version": "1.0.11"},
            "realtime": {"version": "1.0.10"},
            "nightly": {"version": "4.0.0-beta.999"},
            "v4": {"version": "4.0.0-beta.420"},
        },
    }
    m = parse_doc(doc)
    assert m.fmt == "coolify-v4"
    assert m.latest == Version("4.0.0b420")


# -- invalid manifests --------------------------------------------------------------------------

BAD: list[tuple[str, bytes, str]] = [
    ("not json", b"{nope", "is not valid JSON"),
    ("not utf-8", b'{"schema": 1, "app": "\xff"}', "is not valid JSON"),
    ("a list", b"[1, 2]", "top level must be an object"),
    ("unknown format", b'{"hello": "world"}', "unknown manifest format"),
    ("v3 without version", b'{"coolify": {"main": {}}}', "must be a version string"),
    ("v3 bad version", b'{"coolify": {"main": {"version": "latest"}}}', "is not a version"),
]
BAD_OWN: list[tuple[str, dict[str, Any], str]] = [
    ("schema 2", own(schema=2), "unsupported schema 2"),
    ("no schema", {k: v for k, v in own().items() if k != "schema"}, "unsupported schema None"),
    ("other app", own(app="redash"), "is for app 'redash'"),
    ("releases not a list", own(releases={"3.12.36": {}}), "'releases' must be a non-empty list"),
    ("no releases", own(releases=[]), "'releases' must be a non-empty list"),
    ("release not an object", own(releases=["3.12.36"]), "releases[0] must be an object"),
    ("release without version", own(releases=[{"image": "x"}]), "releases[0].version must be"),
    ("release version a number", own(releases=[{"version": 3.12}]), "must be a version string"),
    ("release version bad", own(releases=[{"version": "3.12.x"}]), "'3.12.x' is not a version"),
    ("duplicate", own(releases=[{"version": "3.12.36"}, {"version": "v3.12.36"}]), "listed twice"),
    ("latest unknown", own(latest="3.12.40"), "latest 3.12.40 is not among the releases"),
    ("latest bad", own(latest="newest"), "latest 'newest' is not a version"),
    ("bad image", own(releases=[{"version": "3.12.36", "image": 5}]), "bad image or fallbacks"),
    (
        "bad fallbacks",
        own(releases=[{"version": "3.12.36", "fallbacks": "x"}]),
        "bad image or fallbacks",
    ),
    ("manifest_version str", own(manifest_version="3"), "manifest_version must be"),
    ("manifest_version negative", own(manifest_version=-1), "manifest_version must be"),
    ("expires bad", own(expires="soon"), "expires is not an ISO-8601 time"),
]


def _check_manifest_error(err: ManifestError, needle: str) -> None:
    assert needle in err.message, err.message
    assert err.exit_code == ExitCode.REFUSED
    assert "\n" not in err.message
    assert err.hint
    assert err.as_dict()["error"] == "ManifestError"


@pytest.mark.parametrize(("raw", "needle"), [(r, n) for _, r, n in BAD], ids=[i for i, _, _ in BAD])
def test_invalid_documents(raw: bytes, needle: str) -> None:
    with pytest.raises(ManifestError) as info:
        manifest.parse(raw, PROFILE, source="bad.json")
    _check_manifest_error(info.value, needle)
    assert info.value.message.startswith("bad.json")


@pytest.mark.parametrize(
    ("doc", "needle"), [(d, n) for _, d, n in BAD_OWN], ids=[i for i, _, _ in BAD_OWN]
)
def test_invalid_own_schema(doc: dict[str, Any], needle: str) -> None:
    with pytest.raises(ManifestError) as info:
        parse_doc(doc)
    _check_manifest_error(info.value, needle)


# -- fetching -----------------------------------------------------------------------------------


def test_fetch_from_files(tmp_path: Path) -> None:
    path = tmp_path / "versions.json"
    path.write_text(json.dumps(own()))
    assert manifest.load(str(path), PROFILE).latest == Version("3.12.36")
    with pytest.raises(ManifestError, match="no manifest at"):
        manifest.fetch(str(tmp_path / "missing.json"))
    with pytest.raises(ManifestError, match="cannot read"):
        manifest.fetch(str(tmp_path))
    with pytest.raises(UsageError, match="unsupported manifest location"):
        manifest.fetch("ftp://example.invalid/versions.json")


@pytest.fixture
def local_server() -> Iterator[str]:
    """A real HTTP server on the loopback interface serving one manifest."""
    body = json.dumps(own()).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/versions.json":
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            else:
                self.send_error(404)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_fetch_over_http(local_server: str) -> None:
    m = manifest.load(f"{local_server}/versions.json", PROFILE)
    assert m.latest == Version("3.12.36")
    assert m.source.endswith("/versions.json")
    with pytest.raises(ManifestError, match="cannot fetch") as info:
        manifest.fetch(f"{local_server}/missing.json")
    assert "--manifest" in info.value.hint


def test_the_packaged_manifest_is_the_repositorys() -> None:
    """A wheel carries data/versions.json (a link to the repository's file, copied into the
    wheel): an installed tool without --manifest plans from the same releases."""
    import coolify_migrate

    packaged = Path(coolify_migrate.__file__).parent / "data" / "versions.json"
    assert packaged.is_file(), f"{packaged} does not resolve"
    assert packaged.read_bytes() == (Path(__file__).parent.parent / "versions.json").read_bytes()
