"""Ports for local servers: free now, and out of reach of outgoing connections."""

from __future__ import annotations

import socket

import pytest

from pyscale.local import ports
from pyscale.local.errors import LocalTopologyError
from pyscale.local.ports import LOOPBACK, ephemeral_port_range, free_port


def test_a_servers_port_lies_below_the_range_client_sockets_take_source_ports_from():
    low, _ = ephemeral_port_range()
    picked = [free_port() for _ in range(200)]

    assert all(10_000 <= port < low for port in picked)


def test_no_port_is_handed_out_twice_in_a_process():
    picked = [free_port() for _ in range(300)]

    assert len(set(picked)) == len(picked)


def test_a_port_something_listens_on_is_never_picked(monkeypatch):
    with socket.socket() as listener:
        listener.bind((LOOPBACK, 0))
        listener.listen()
        busy = listener.getsockname()[1]
        monkeypatch.setattr(ports, "_LOWEST_PORT", busy)
        monkeypatch.setattr(ports, "ephemeral_port_range", lambda: (busy + 3, 60999))

        picked = {free_port() for _ in range(2)}

    assert busy not in picked
    assert picked <= {busy + 1, busy + 2}


def test_a_span_keeps_the_companion_port_free_and_below_the_range():
    low, _ = ephemeral_port_range()
    port = free_port(span=10_000)

    assert port + 10_000 < low


def test_no_room_below_the_ephemeral_range_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(ports, "ephemeral_port_range", lambda: (10_001, 60999))

    with pytest.raises(LocalTopologyError, match=r"net\.ipv4\.ip_local_port_range"):
        free_port()
