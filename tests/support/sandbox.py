"""Run a command under the kernel restrictions a rendered systemd unit asks for, without systemd.

No systemd runs here (no `systemd-run`), so this does what systemd would do to the service's
process before exec, with the same kernel mechanisms, read from the unit itself:

- SystemCallFilter= (groups expanded by `systemd-analyze syscall-filter`, `~` lines removed),
  SystemCallErrorNumber=, SystemCallArchitectures=native: a seccomp allow-list (libseccomp);
- RestrictAddressFamilies=: a second seccomp filter refusing socket() for other families;
- MemoryDenyWriteExecute=: prctl(PR_SET_MDWE) (what systemd uses where the kernel has it);
- NoNewPrivileges=, CapabilityBoundingSet=, AmbientCapabilities=: prctl and capset;
- ProtectSystem=strict: a private mount namespace with every mount read-only but the
  unit's writable places (RuntimeDirectory=, PrivateTmp='s /tmp), given as directories;
- ProtectHome=: an empty read-only tmpfs over /home and /run/user (not /root here: the test
  interpreter lives there; on EC2 it is /usr/bin/python3.12);
- UMask=.

Everything else a unit may say is listed in NOT_EMULATED and ignored; a directive in
neither list makes `Sandbox.from_unit` fail, so a new one is never silently skipped.
Needs root (mount namespaces) and libseccomp.

    sandbox = Sandbox.from_unit(unit_text, writable=[runtime_dir, tmp_dir])
    subprocess.run([*sandbox.command(), "python", "-c", "..."])
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")

# Directives this emulation does not reproduce: they restrict things the app never does
# (raise realtime priority, load modules, set the clock or hostname, create namespaces or
# set-uid files) or hide what it never reads (/proc of other processes, devices, kernel
# logs). Their effect on a real instance is only checkable there.
NOT_EMULATED = frozenset(
    {
        "PrivateTmp",  # emulated as one of the writable directories (TMPDIR)
        "PrivateDevices",
        "PrivateMounts",
        "PrivateUsers",
        "ProtectKernelTunables",
        "ProtectKernelModules",
        "ProtectKernelLogs",
        "ProtectControlGroups",
        "ProtectClock",
        "ProtectHostname",
        "ProtectProc",
        "ProcSubset",
        "LockPersonality",
        "RestrictNamespaces",
        "RestrictRealtime",
        "RestrictSUIDSGID",
        "RemoveIPC",
        "KeyringMode",
        "DevicePolicy",
        "DynamicUser",
    }
)
EMULATED = frozenset(
    {
        "SystemCallFilter",
        "SystemCallErrorNumber",
        "SystemCallArchitectures",
        "RestrictAddressFamilies",
        "MemoryDenyWriteExecute",
        "NoNewPrivileges",
        "CapabilityBoundingSet",
        "AmbientCapabilities",
        "ProtectSystem",
        "ProtectHome",
        "UMask",
    }
)
# What the service does, not how it is confined: not this module's business.
NOT_SANDBOXING = frozenset(
    {
        "Type",
        "NotifyAccess",
        "User",
        "Group",
        "WorkingDirectory",
        "EnvironmentFile",
        "ExecStart",
        "ExecReload",
        "KillMode",
        "KillSignal",
        "TimeoutStopSec",
        "Restart",
        "RestartSec",
        "RuntimeDirectory",
        "StandardOutput",
        "StandardError",
        "ReadWritePaths",  # emulated through `writable`
    }
)


class UnknownDirectiveError(ValueError):
    """The unit says something this emulation neither reproduces nor knowingly skips."""


def syscall_group(name: str) -> set[str]:
    """System call names of a systemd group (`@system-service`), nested groups expanded."""
    output = subprocess.run(
        [SYSTEMD_ANALYZE or "systemd-analyze", "syscall-filter", name],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    calls: set[str] = set()
    for line in output.splitlines()[1:]:
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        calls |= syscall_group(entry) if entry.startswith("@") else {entry}
    return calls


@dataclass(frozen=True)
class Sandbox:
    writable: tuple[str, ...]
    hidden: tuple[str, ...] = ()
    allowed_syscalls: tuple[str, ...] = ()
    refused_errno: int | None = None  # None: a refused call kills the process (systemd's)
    address_families: tuple[str, ...] = ()
    deny_write_execute: bool = False
    no_new_privileges: bool = False
    drop_capabilities: bool = False
    read_only_system: bool = False
    umask: int | None = None
    skipped: tuple[str, ...] = field(default=())

    @classmethod
    def from_unit(cls, unit: str, writable: Sequence[Path]) -> Sandbox:
        service = _service_section(unit)
        unknown = set(service) - EMULATED - NOT_EMULATED - NOT_SANDBOXING
        if unknown:
            raise UnknownDirectiveError(f"not emulated nor knowingly skipped: {sorted(unknown)}")
        allowed: set[str] = set()
        for line in service.get("SystemCallFilter", []):
            names = line.lstrip("~").split()
            expanded = set().union(*(syscall_group(n) if n[0] == "@" else {n} for n in names))
            allowed = allowed - expanded if line.startswith("~") else allowed | expanded
        error_number = service.get("SystemCallErrorNumber", [None])[-1]
        mask = service.get("UMask", [None])[-1]
        return cls(
            writable=tuple(str(path) for path in writable),
            hidden=("/home", "/run/user") if _on(service, "ProtectHome") else (),
            allowed_syscalls=tuple(sorted(allowed)),
            refused_errno=getattr(errno, error_number) if error_number else None,
            address_families=tuple(" ".join(service.get("RestrictAddressFamilies", [])).split()),
            deny_write_execute=_on(service, "MemoryDenyWriteExecute"),
            no_new_privileges=_on(service, "NoNewPrivileges"),
            drop_capabilities=service.get("CapabilityBoundingSet") == [""],
            read_only_system=service.get("ProtectSystem", [""])[-1] == "strict",
            umask=int(mask, 8) if mask else None,
            skipped=tuple(sorted(set(service) & NOT_EMULATED)),
        )

    def command(self) -> list[str]:
        """The prefix that runs a command inside this sandbox."""
        return [sys.executable, "-m", "tests.support.sandbox", json.dumps(asdict(self)), "--"]


def _service_section(unit: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    section = None
    for line in unit.splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif section == "Service" and "=" in line:
            key, value = line.split("=", 1)
            directives.setdefault(key, []).append(value)
    return directives


def _on(service: dict[str, list[str]], key: str) -> bool:
    return service.get(key, ["false"])[-1] in ("true", "yes", "1", "strict")


# --- inside the sandbox's process, before exec ------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNS = 0x00020000
MS_BIND, MS_REC, MS_PRIVATE, MS_RDONLY = 0x1000, 0x4000, 1 << 18, 0x1
MOUNT_ATTR_RDONLY, AT_RECURSIVE, AT_FDCWD = 0x1, 0x8000, -100
SYS_MOUNT_SETATTR = 442
PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 38, 24, 47, 4
PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
SCMP_ACT_ALLOW, SCMP_ACT_KILL_PROCESS = 0x7FFF0000, 0x80000000
SCMP_CMP_EQ = 4


def _errno_action(number: int) -> int:
    return 0x00050000 | (number & 0xFFFF)


class _MountAttr(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint64) for name in ("set", "clr", "propagation", "userns")]


class _ArgCmp(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


def _check(result: int, what: str) -> None:
    if result != 0:
        number = ctypes.get_errno() or -result
        raise OSError(number, f"sandbox: {what}: {os.strerror(number)}")


def _set_read_only(path: str, read_only: bool, recursive: bool) -> None:
    attr = _MountAttr(set=MOUNT_ATTR_RDONLY if read_only else 0, clr=0 if read_only else 1)
    flags = AT_RECURSIVE if recursive else 0
    result = _libc.syscall(
        SYS_MOUNT_SETATTR, AT_FDCWD, path.encode(), flags, ctypes.byref(attr), ctypes.sizeof(attr)
    )
    _check(result, f"mount_setattr {path}")


def _mount_namespace(sandbox: Sandbox) -> None:
    _check(_libc.unshare(CLONE_NEWNS), "unshare")
    _check(_libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
    for path in sandbox.writable:
        _check(_libc.mount(path.encode(), path.encode(), None, MS_BIND, None), f"bind {path}")
    for path in sandbox.hidden:
        if os.path.isdir(path):
            _check(_libc.mount(b"tmpfs", path.encode(), b"tmpfs", MS_RDONLY, None), path)
    if sandbox.read_only_system:
        _set_read_only("/", read_only=True, recursive=True)
        for path in sandbox.writable:
            _set_read_only(path, read_only=False, recursive=False)


def _drop_capabilities() -> None:
    _check(_libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "clear ambient")
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    for capability in range(last + 1):
        _check(_libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0), f"drop capability {capability}")
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = (ctypes.c_uint32 * 6)()  # effective, permitted, inheritable x 2: all empty
    _check(_libc.capset(header, data), "capset")


def _load_seccomp(sandbox: Sandbox) -> None:
    seccomp = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    seccomp.seccomp_init.restype = ctypes.c_void_p
    seccomp.seccomp_init.argtypes = [ctypes.c_uint32]
    seccomp.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint, ctypes.POINTER(_ArgCmp)
    ]  # fmt: skip
    seccomp.seccomp_load.argtypes = [ctypes.c_void_p]
    seccomp.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]

    # The family filter first: loading it takes calls the allow-list may not have.
    if sandbox.address_families:
        allowed = {getattr(socket, family) for family in sandbox.address_families}
        families = seccomp.seccomp_init(SCMP_ACT_ALLOW)
        number = seccomp.seccomp_syscall_resolve_name(b"socket")
        for family in range(64):  # AF_MAX is 46 on Linux 6.x
            if family not in allowed:
                condition = _ArgCmp(0, SCMP_CMP_EQ, family, 0)
                action = _errno_action(errno.EAFNOSUPPORT)
                _check(
                    seccomp.seccomp_rule_add_array(families, action, number, 1, condition), "socket"
                )
        _check(seccomp.seccomp_load(families), "load the address family filter")
    if sandbox.allowed_syscalls:
        refused = SCMP_ACT_KILL_PROCESS
        if sandbox.refused_errno is not None:
            refused = _errno_action(sandbox.refused_errno)
        allow_list = seccomp.seccomp_init(refused)
        for name in sandbox.allowed_syscalls:
            number = seccomp.seccomp_syscall_resolve_name(name.encode())
            if number >= 0:  # names this libseccomp doesn't know don't exist here either
                _check(
                    seccomp.seccomp_rule_add_array(allow_list, SCMP_ACT_ALLOW, number, 0, None),
                    name,
                )
        _check(seccomp.seccomp_load(allow_list), "load the system call filter")


def enter(sandbox: Sandbox) -> None:
    """Confine this process as the unit would; the exec that follows inherits all of it."""
    _mount_namespace(sandbox)
    if sandbox.umask is not None:
        os.umask(sandbox.umask)
    if sandbox.drop_capabilities:
        _drop_capabilities()
    if sandbox.no_new_privileges or sandbox.allowed_syscalls or sandbox.address_families:
        _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no new privileges")
    if sandbox.deny_write_execute:
        _check(_libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0), "MDWE")
    _load_seccomp(sandbox)


def main(argv: list[str]) -> None:
    separator = argv.index("--")
    sandbox = Sandbox(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(argv[1]).items()}
    )
    command = argv[separator + 1 :]
    enter(sandbox)
    os.execvp(command[0], command)  # noqa: S606 (the command the test asked to confine)


if __name__ == "__main__":
    main(sys.argv)
