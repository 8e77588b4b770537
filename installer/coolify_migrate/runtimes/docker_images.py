"""Docker images for the runtime: present before anything stops, and Docker errors translated.

Only modules under ``installer/runtime/`` import the Docker SDK.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from docker.errors import DockerException, ImageNotFound

from coolify_migrate.core.errors import MigrateError, RuntimeProblem
from coolify_migrate.core.output import Output
from coolify_migrate.core.release import Release


def reason(err: DockerException) -> str:
    text = str(getattr(err, "explanation", None) or err)
    return text.strip().splitlines()[0] if text.strip() else type(err).__name__


@contextmanager
def translate(what: str, *, hint: str | None = None) -> Iterator[None]:
    """Docker SDK errors become one-line RuntimeProblem errors with a hint, where they enter."""
    try:
        yield
    except MigrateError:
        raise
    except DockerException as err:
        raise RuntimeProblem(f"{what}: {reason(err)}", hint=hint) from err


def image_tag(reference: str) -> str | None:
    """``ghcr.io/x/coolify:3.12.32`` -> ``3.12.32`` (a registry port is not a tag)."""
    name = reference.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last else None


def split_reference(reference: str) -> tuple[str, str]:
    tag = image_tag(reference)
    if tag is None:
        return reference, "latest"
    return reference[: -(len(tag) + 1)], tag


def has_image(client: Any, reference: str) -> bool:
    with translate(f"cannot inspect the image {reference}"):
        try:
            client.images.get(reference)
            return True
        except ImageNotFound:
            return False


def ensure(client: Any, release: Release, *, out: Output, event: Callable[..., None]) -> str:
    """A local image first, else pull each reference in order; refuse when none can be had."""
    for ref in release.images:
        if has_image(client, ref):
            event("image-present", image=ref)
            return ref
    failures = []
    for ref in release.images:
        repo, tag = split_reference(ref)
        out.info(f"pulling {ref}")
        bar = out.progress("pulling the image", 1, "images")  # one call: the elapsed time moves
        try:
            client.images.pull(repo, tag=tag)
            bar.advance()
        except DockerException as err:
            failures.append(f"{ref}: {reason(err)}")
            continue
        finally:
            bar.close()
        event("image-pulled", image=ref)
        return ref
    raise RuntimeProblem(
        f"cannot obtain the image for {release.version} ({'; '.join(failures)}); "
        "nothing was stopped",
        hint="check that the registry is reachable (docker pull), or 'docker load' the image, "
        "then run again",
    )
