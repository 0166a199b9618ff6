"""Small, real wheels for tests, and a package index on loopback that serves them.

``make_wheel`` writes a valid wheel (METADATA, WHEEL, RECORD, one module) that pip installs;
``fixture_wheelhouse`` lays out what ``PYSCALE_WHEELHOUSE_DIR`` expects (per architecture:
requirements.txt pinning each wheel by its SHA-256, and the wheels), so the test suite's
program runs build a release with a wheelhouse and never touch the network.
``installed_wheels`` packs distributions installed in this environment (what ``make install``
put there from uv.lock) back into wheels: the app's real dependencies, without a download.
``SimpleIndex`` is a PEP 503 index on 127.0.0.1 that records every request, for the real
``pip download`` path."""

from __future__ import annotations

import base64
import hashlib
import threading
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import Distribution, distribution
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

# A fixed timestamp: the same wheel has the same bytes (and hash) in every run.
_ZIP_TIME = (2026, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class FixtureWheel:
    name: str
    version: str
    tag: str  # python-abi-platform, e.g. "py3-none-any" or "cp312-cp312-manylinux_2_17_aarch64"

    @property
    def filename(self) -> str:
        return f"{self.name.replace('-', '_')}-{self.version}-{self.tag}.whl"


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def make_wheel(directory: Path, wheel: FixtureWheel) -> Path:
    """Write the wheel into ``directory``; its module answers ``VERSION``."""
    module = wheel.name.replace("-", "_")
    dist_info = f"{module}-{wheel.version}.dist-info"
    files = {
        f"{module}/__init__.py": f'VERSION = "{wheel.version}"\n'.encode(),
        f"{dist_info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {wheel.name}\nVersion: {wheel.version}\n"
        ).encode(),
        f"{dist_info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: pyscale-tests\n"
            f"Root-Is-Purelib: {'true' if wheel.tag.endswith('-any') else 'false'}\n"
            f"Tag: {wheel.tag}\n"
        ).encode(),
    }
    record = [_record_line(path, data) for path, data in files.items()]
    files[f"{dist_info}/RECORD"] = ("\n".join([*record, f"{dist_info}/RECORD,,"]) + "\n").encode()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / wheel.filename
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=_ZIP_TIME), data)
    return path


# Written by the installer, not part of the wheel it installed (RECORD is written afresh).
_INSTALLER_FILES = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"})


def _wheel_tag(dist: Distribution) -> str:
    """The wheel's tags from its WHEEL file, compressed as a wheel file name spells them
    (``cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64``)."""
    tags = [
        line.split(":", 1)[1].strip().split("-")
        for line in (dist.read_text("WHEEL") or "").splitlines()
        if line.startswith("Tag:")
    ]
    if not tags:
        raise ValueError(f"{dist.metadata['Name']}: its WHEEL file names no tag")
    return "-".join(".".join(dict.fromkeys(tag[part] for tag in tags)) for part in range(3))


def installed_wheel(directory: Path, dist: Distribution) -> tuple[FixtureWheel, Path]:
    """``dist`` as installed here, packed back into a wheel: its files under site-packages
    and its dist-info (console scripts come back from entry_points.txt). Neither pip nor uv
    has a command for this, and uv keeps no wheel files (its cache holds them unpacked)."""
    wheel = FixtureWheel(
        str(canonicalize_name(dist.metadata["Name"])), dist.version, _wheel_tag(dist)
    )
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / wheel.filename
    record = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for file in sorted(dist.files or [], key=str):
            name = file.as_posix()
            if name.startswith("../") or "__pycache__" in file.parts:
                continue  # scripts outside site-packages; bytecode the installer compiled
            if ".dist-info/" in name and file.name in _INSTALLER_FILES:
                continue
            data = Path(str(dist.locate_file(file))).read_bytes()
            archive.writestr(zipfile.ZipInfo(name, date_time=_ZIP_TIME), data)
            record.append(_record_line(name, data))
        dist_info = next(f.parts[0] for f in dist.files or [] if f.parts[0].endswith(".dist-info"))
        record.append(f"{dist_info}/RECORD,,")
        archive.writestr(
            zipfile.ZipInfo(f"{dist_info}/RECORD", date_time=_ZIP_TIME), "\n".join(record) + "\n"
        )
    return wheel, path


def installed_wheels(
    directory: Path, requirements: Iterable[str]
) -> list[tuple[FixtureWheel, Path]]:
    """``requirements`` and everything they need, as installed here (markers evaluated for
    this interpreter, extras followed), each packed back into a wheel in ``directory``."""
    wanted: dict[str, set[str]] = {}
    pending = [Requirement(text) for text in requirements]
    while pending:
        requirement = pending.pop()
        key = str(canonicalize_name(requirement.name))
        extras = {"", *requirement.extras}
        if key in wanted and extras <= wanted[key]:
            continue
        wanted[key] = wanted.get(key, set()) | extras
        for text in distribution(key).requires or []:
            needed = Requirement(text)
            if needed.marker is None or any(
                needed.marker.evaluate({"extra": extra}) for extra in wanted[key]
            ):
                pending.append(needed)
    return [installed_wheel(directory, distribution(key)) for key in sorted(wanted)]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def requirements_for(wheels: Iterable[tuple[FixtureWheel, Path]]) -> str:
    """uv export's format: ``name==version \\`` then its hash lines."""
    return "".join(
        f"{wheel.name}=={wheel.version} \\\n    --hash=sha256:{sha256(path)}\n"
        for wheel, path in wheels
    )


def fixture_wheelhouse(root: Path) -> Path:
    """``root/<architecture>/``: a compiled wheel for that machine and a pure one."""
    for architecture, machine in (("arm64", "aarch64"), ("x86_64", "x86_64")):
        directory = root / architecture
        wheels = [
            FixtureWheel("pyscale-fixture-native", "1.0", f"cp312-cp312-manylinux_2_17_{machine}"),
            FixtureWheel("pyscale-fixture-pure", "1.0", "py3-none-any"),
        ]
        built = [(wheel, make_wheel(directory, wheel)) for wheel in wheels]
        (directory / "requirements.txt").write_text(requirements_for(built))
    return root


class SimpleIndex:
    """A PEP 503 "simple" index on loopback serving the wheels in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.requests: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests.append(self.path)
                body, kind = owner._answer(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/simple/"
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def _answer(self, path: str) -> tuple[bytes | None, str]:
        if path.startswith("/files/"):
            file = self.directory / path.removeprefix("/files/")
            return (file.read_bytes() if file.is_file() else None), "application/octet-stream"
        project = path.removeprefix("/simple/").strip("/")
        links = [
            f'<a href="/files/{w.name}#sha256={sha256(w)}">{w.name}</a>'
            for w in sorted(self.directory.glob("*.whl"))
            if w.name.split("-")[0].replace("_", "-").lower() == project
        ]
        if not links:
            return None, "text/html"
        return ("<html><body>" + "".join(links) + "</body></html>").encode(), "text/html"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
