"""Reading the inputs the program registered, in the wire form the engine recorded them.

The offline runner records what the provider would receive: camelCase keys, every number a
float, secrets wrapped in a signature dict, values not known until apply as a sentinel.
The plan shows people (and JSON readers) plain values: whole floats as ints, secrets
masked, unknowns said as such — never the secret's value, never a bare float like ``3.0``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# Pulumi's wire markers (pulumi.runtime.rpc). Spelled here so rendering a plan never needs
# the SDK; tests/plan check them against the installed SDK.
SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"  # noqa: S105 - a marker, not a password
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"  # noqa: S105 - a marker, not a password
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"

SECRET_TEXT = "[secret]"  # noqa: S105 - what a masked secret reads as
UNKNOWN_TEXT = "(known after apply)"

_STEP = re.compile(r"([^.\[\]]+)|\[(\d+|\*)\]")


def is_secret(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get(SECRET_SIG_KEY) == SECRET_SIG


def plain(value: Any) -> Any:
    """A wire value as JSON-ready plain data: secrets masked, unknowns named, 3.0 -> 3."""
    if is_secret(value):
        return SECRET_TEXT
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return UNKNOWN_TEXT if value == UNKNOWN else value
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    # Anything else (a resource reference the SDK handed back as an object) reads as text.
    return str(value)


def lookup(inputs: Mapping[str, Any], path: str) -> Any:
    """The value at ``path`` (``a.b[0].c``; ``[*]`` maps over a list), or None if absent.

    Secrets are unwrapped on the way down only to reach a nested key, and what is found
    inside one comes back wrapped again (the engine marks a whole input secret when any part
    of it is); a secret *leaf* stays wrapped. Either way ``plain`` masks it.
    """
    current: list[Any] = [inputs]
    fan_out = False
    inside_secret = False
    for name, index in _STEP.findall(path):
        following: list[Any] = []
        for item in current:
            if is_secret(item):
                inside_secret = True
                item = item.get("value")  # descend into the wrapped value
            if name:
                if isinstance(item, Mapping) and name in item:
                    following.append(item[name])
            elif index == "*":
                fan_out = True
                if isinstance(item, list):
                    following.extend(item)
            elif isinstance(item, list) and int(index) < len(item):
                following.append(item[int(index)])
        current = following
    found = current if fan_out else (current[0] if current else None)
    if inside_secret and found is not None:
        return {SECRET_SIG_KEY: SECRET_SIG, "value": found}
    return found
