"""The release manifest (``versions.json``): this project's schema and Coolify's own formats.

Schema (``"schema": 1``), documented in docs/architecture.md::

    {"schema": 1, "app": "coolify-v3", "manifest_version": 4, "expires": "2027-06-30T00:00:00Z",
     "latest": "3.12.36",
     "releases": [{"version": "3.12.33", "image": "ghcr.io/coollabsio/coolify:3.12.33",
                   "fallbacks": ["coollabsio/coolify:3.12.33"], "required_stop": true,
                   "withdrawn": false, "notes": "..."}]}

Coolify v3's ``{"coolify": {"main": {"version": ...}}}`` and v4's ``{"coolify": {"v4": ...}}`` are
read too: they name only the latest version, so images and required stops come from the profile.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.version import Version

from coolify_migrate.core import bounded
from coolify_migrate.core.errors import ManifestError, UsageError
from coolify_migrate.core.release import Release
from coolify_migrate.core.versions import parse_version

if TYPE_CHECKING:
    from coolify_migrate.core.app import Profile


@dataclass(frozen=True)
class Manifest:
    app: str
    releases: tuple[Release, ...]
    latest: Version
    source: str
    fmt: str  # "coolify-migrate/1", "coolify-v3", "coolify-v4"
    manifest_version: int | None = None
    expires: datetime | None = None
    raw: bytes = field(default=b"", repr=False)

    def release(self, version: Version) -> Release | None:
        for r in self.releases:
            if r.version == version:
                return r
        return None

    def as_dict(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "format": self.fmt,
            "source": self.source,
            "latest": str(self.latest),
            "manifest_version": self.manifest_version,
            "expires": self.expires.isoformat() if self.expires else None,
            "releases": [r.as_dict() for r in self.releases],
        }


def fetch(source: str, *, timeout: float = 15.0, limit: int = bounded.MANIFEST_BYTES) -> bytes:
    """Read a manifest (or its signature) from a file path or an http(s) URL: at most ``limit``
    bytes (more is refused, so an endless file or response cannot fill memory)."""
    if source.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(source, timeout=timeout) as resp:
                data: bytes = resp.read(limit + 1)
        except (urllib.error.URLError, OSError) as err:
            raise ManifestError(
                f"cannot fetch {source}: {getattr(err, 'reason', err)}",
                hint="check the URL, or pass --manifest with a local versions.json",
            ) from err
        if len(data) > limit:
            raise ManifestError(f"{source} is larger than {limit >> 10} KiB; refusing to read it")
        return data
    if "://" in source:
        raise UsageError(
            f"unsupported manifest location {source!r}", hint="use a path or an http(s) URL"
        )
    try:
        return bounded.read_bytes(Path(source), limit, ManifestError, "the manifest")
    except FileNotFoundError as err:
        raise ManifestError(f"no manifest at {source}", hint="pass --manifest PATH|URL") from err
    except OSError as err:
        raise ManifestError(f"cannot read {source}: {err.strerror}") from err


def load(source: str, profile: Profile) -> Manifest:
    return parse(fetch(source), profile, source=source)


def parse(raw: bytes, profile: Profile, *, source: str = "<memory>") -> Manifest:
    doc = bounded.loads_json(raw, ManifestError, source)
    if not isinstance(doc, dict):
        raise ManifestError(f"{source}: the top level must be an object")
    if "releases" in doc:
        return _parse_own(doc, profile, source, raw)
    coolify = doc.get("coolify")
    if isinstance(coolify, dict) and isinstance(coolify.get("main"), dict):
        return _from_latest(coolify["main"].get("version"), profile, source, raw, "coolify-v3")
    if isinstance(coolify, dict) and isinstance(coolify.get("v4"), dict):
        return _from_latest(coolify["v4"].get("version"), profile, source, raw, "coolify-v4")
    raise ManifestError(
        f"{source}: unknown manifest format",
        hint="expected this project's schema (a 'releases' list) or Coolify's versions.json",
    )


def _version(value: Any, source: str, where: str) -> Version:
    if not isinstance(value, str):
        raise ManifestError(f"{source}: {where} must be a version string")
    try:
        return parse_version(value)
    except UsageError as err:
        raise ManifestError(f"{source}: {where} {value!r} is not a version") from err


def _parse_own(doc: dict[str, Any], profile: Profile, source: str, raw: bytes) -> Manifest:
    if doc.get("schema") != 1:
        raise ManifestError(
            f"{source}: unsupported schema {doc.get('schema')!r} (this tool reads 1)"
        )
    app = doc.get("app")
    if app != profile.name:
        raise ManifestError(f"{source} is for app {app!r}, this instance is {profile.name!r}")
    items = doc["releases"]
    if not isinstance(items, list) or not items:
        raise ManifestError(f"{source}: 'releases' must be a non-empty list")
    releases: list[Release] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise ManifestError(f"{source}: releases[{i}] must be an object")
        version = _version(item.get("version"), source, f"releases[{i}].version")
        image = item.get("image") or profile.image_for(version)
        fallbacks = item.get("fallbacks", list(profile.fallback_images_for(version)))
        if not isinstance(image, str) or not isinstance(fallbacks, list):
            raise ManifestError(f"{source}: releases[{i}] has a bad image or fallbacks")
        releases.append(
            Release(
                version=version,
                image=image,
                fallbacks=tuple(str(f) for f in fallbacks),
                required_stop=bool(item.get("required_stop", profile.is_required_stop(version))),
                withdrawn=bool(item.get("withdrawn", False)),
                notes=str(item.get("notes", "")),
            )
        )
    versions = [r.version for r in releases]
    if len(set(versions)) != len(versions):
        raise ManifestError(f"{source}: a version is listed twice")
    latest = _version(doc.get("latest", str(max(versions))), source, "latest")
    if latest not in versions:
        raise ManifestError(f"{source}: latest {latest} is not among the releases")
    mv = doc.get("manifest_version")
    if mv is not None and (not isinstance(mv, int) or mv < 0):
        raise ManifestError(f"{source}: manifest_version must be a non-negative integer")
    expires = None
    if doc.get("expires") is not None:
        try:
            expires = datetime.fromisoformat(str(doc["expires"]).replace("Z", "+00:00"))
        except ValueError as err:
            raise ManifestError(f"{source}: expires is not an ISO-8601 time") from err
    return Manifest(
        app=profile.name,
        releases=tuple(sorted(releases, key=lambda r: r.version)),
        latest=latest,
        source=source,
        fmt="coolify-migrate/1",
        manifest_version=mv,
        expires=expires,
        raw=raw,
    )


def _from_latest(value: Any, profile: Profile, source: str, raw: bytes, fmt: str) -> Manifest:
    latest = _version(value, source, "coolify version")
    stops = [v for v in profile.required_stops if v < latest]
    releases = [
        Release(v, profile.image_for(v), profile.fallback_images_for(v), required_stop=True)
        for v in stops
    ]
    releases.append(
        Release(
            latest,
            profile.image_for(latest),
            profile.fallback_images_for(latest),
            required_stop=profile.is_required_stop(latest),
        )
    )
    return Manifest(
        app=profile.name, releases=tuple(releases), latest=latest, source=source, fmt=fmt, raw=raw
    )


def _repository(image: str) -> str:
    """``ghcr.io/coollabsio/coolify:3.12.33`` (or ``...@sha256:...``) -> the repository part."""
    name = image.split("@", 1)[0]
    head, _, tag = name.rpartition(":")
    return head if head and "/" not in tag else name


def disagreements(manifest: Manifest, profile: Profile) -> list[str]:
    """What the manifest says against what the profile knows for certain: an image outside the
    app's repositories, a required stop (at or below its latest) missing or not required, or a
    withdrawn release offered again.
    An unsigned manifest with any of these is refused (``signing.load_verified``)."""
    found = []
    own = {profile.image_repo, *profile.fallback_repos}
    for r in manifest.releases:
        for image in r.images:
            if _repository(image) not in own:
                found.append(f"{r.version} names image {image!r}, not from {profile.image_repo}")
                break
    for stop in profile.required_stops:
        if stop > manifest.latest:
            continue
        release = manifest.release(stop)
        if release is None:
            found.append(f"the required stop {stop} is missing")
        elif not release.required_stop:
            found.append(f"the required stop {stop} is marked not required")
    for gone in profile.withdrawn:
        release = manifest.release(gone)
        if release is not None and not release.withdrawn:
            found.append(f"{gone} was withdrawn by its publisher, not offered again")
    return found
