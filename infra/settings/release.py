"""Release keys: which app the fleet serves, and how gunicorn finds it."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

from infra.settings.base import ROLLS_THE_FLEET, AreaSettings, in_place, matches, setting


def _inside_the_repository(source_dir: str) -> str:
    if not source_dir or source_dir.startswith("/") or ".." in source_dir.split("/"):
        raise ValueError(
            f"must be a directory inside the repository, relative to it, got {source_dir!r}"
        )
    return source_dir


def _no_trailing_slash(value: object) -> object:
    return value.strip().rstrip("/") if isinstance(value, str) else value


class ReleaseSettings(AreaSettings):
    app_source_dir: Annotated[
        str, BeforeValidator(_no_trailing_slash), AfterValidator(_inside_the_repository)
    ] = setting(
        "appSourceDir",
        "app",
        allowed="a directory relative to the repository",
        doc="Your app's directory, relative to the repository root (packaged into the release).",
        change=in_place(ROLLS_THE_FLEET),
    )
    wsgi_module: Annotated[
        str,
        matches(
            r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*$",
            "must be module.path:callable like app.wsgi:app",
        ),
    ] = setting(
        "wsgiModule",
        "app.wsgi:app",
        allowed="module.path:callable",
        doc="The WSGI callable gunicorn serves, importable from the repository root.",
        change=in_place(ROLLS_THE_FLEET),
    )
