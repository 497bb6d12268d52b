"""
Helpers that send protocol datagrams over real loopback UDP sockets.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from typing import Any, Optional, Sequence


def announcement(run_id: str, name: str, columns: Sequence[str],
                 started: Optional[float] = None) -> bytes:
    """
    Encode a version 1 run announcement.
    """
    return json.dumps({
        "v": 1, "type": "run", "run": run_id, "name": name,
        "columns": list(columns), "started": started or time.time(),
        "host": "test-host", "pid": 4242,
    }).encode("utf-8")


def sample(run_id: str, seq: int, values: Sequence[Any],
           t: Optional[float] = None) -> bytes:
    """
    Encode a version 1 sample.
    """
    return json.dumps({
        "v": 1, "type": "sample", "run": run_id, "seq": seq,
        "t": t if t is not None else time.time(), "values": list(values),
    }).encode("utf-8")


def new_run_id() -> str:
    """
    Return a fresh run id.
    """
    return str(uuid.uuid4())


class Sender:
    """
    A UDP socket that sends datagrams to one loopback port.
    """

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_DGRAM)
        self._address = (host, port)

    def send(self, *datagrams: bytes) -> None:
        """
        Send each datagram in order.
        """
        for datagram in datagrams:
            self._socket.sendto(datagram, self._address)

    def close(self) -> None:
        """
        Close the socket.
        """
        self._socket.close()


def free_udp_port() -> int:
    """
    Return a UDP port that is free on 127.0.0.1 right now.
    """
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = int(probe.getsockname()[1])
    probe.close()
    return port
