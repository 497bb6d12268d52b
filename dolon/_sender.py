"""
The UDP socket that carries datagrams to mnemic.

Sending never blocks and never raises. A full socket buffer, an unreachable
network or a server that is not running each drop the datagram and log a
rate-limited warning. A server that is not running shows up as ICMP "port
unreachable", which a connected UDP socket raises on a later send.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

from ._ratelimit import RateLimitedLog
from ._signing import sign

_log = logging.getLogger(__name__)

_AddrInfo = tuple[int, Any]  # (address family, socket address)


def choose_address(infos: list[tuple[Any, ...]]) -> _AddrInfo:
    """
    Choose one address of a ``getaddrinfo`` result, preferring IPv4.

    ``localhost`` often resolves to ``::1`` first, while mnemic commonly
    listens on ``127.0.0.1`` only, so an IPv4 address wins when there is one.
    A host that resolves only to IPv6 addresses uses the first of them.
    """
    for family, _type, _proto, _canonname, sockaddr in infos:
        if family == socket.AF_INET:
            return family, sockaddr
    family, _type, _proto, _canonname, sockaddr = infos[0]
    return family, sockaddr


class UdpSender:
    """
    A non-blocking UDP socket connected to one mnemic server.

    With a ``secret``, every datagram is signed before it is sent.
    """

    def __init__(
        self, host: str, port: int, log: RateLimitedLog, secret: bytes | None = None
    ) -> None:
        self.host = host
        self.port = port
        self._log = log
        self._secret = secret
        self._address: _AddrInfo | None = None
        self._socket: socket.socket | None = None
        self.sent = 0
        self.dropped = 0

    @property
    def connected(self) -> bool:
        """
        Whether the host was resolved and a socket is open.
        """
        return self._socket is not None

    async def resolve(self) -> bool:
        """
        Resolve the host in the event loop's executor and connect the socket
        to its address, replacing the socket when the address changed.

        A failed resolution keeps the current socket, if there is one.

        :return: whether the socket was opened or moved to a new address.
        """
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)
        except (OSError, UnicodeError) as error:
            self._log.warning(
                ("resolve", self.host),
                "Cannot resolve mnemic host %r: %s; samples are dropped until "
                "it resolves, retrying",
                self.host,
                error,
            )
            return False
        if not infos:
            return False

        address = choose_address(infos)
        if address == self._address and self._socket is not None:
            return False
        return self._connect(address)

    def _connect(self, address: _AddrInfo) -> bool:
        family, sockaddr = address
        new_socket = socket.socket(family, socket.SOCK_DGRAM)
        try:
            new_socket.setblocking(False)
            new_socket.connect(sockaddr)
        except OSError as error:
            new_socket.close()
            self._log.warning(
                ("connect", self.host),
                "Cannot send to mnemic at %s: %s",
                sockaddr,
                error,
            )
            return False

        self.close()
        self._socket = new_socket
        self._address = address
        _log.debug("Sending to mnemic at %s (host %r)", sockaddr, self.host)
        return True

    def send(self, datagram: bytes) -> bool:
        """
        Send one datagram, or drop it and log why.

        :return: whether the kernel accepted the datagram.
        """
        if self._socket is None:
            self.dropped += 1
            return False
        if self._secret is not None:
            datagram = sign(datagram, self._secret)
        try:
            self._socket.send(datagram)
        except BlockingIOError:
            reason = "the socket's send buffer is full"
        except ConnectionRefusedError:
            reason = "nothing is listening there (ICMP port unreachable)"
        except OSError as error:
            reason = str(error)
        else:
            self.sent += 1
            return True

        self.dropped += 1
        self._log.warning(
            ("send", self.host),
            "Dropped a datagram to mnemic at %s:%d because %s",
            self.host,
            self.port,
            reason,
        )
        return False

    def close(self) -> None:
        """
        Close the socket. Later sends drop their datagrams until
        :meth:`resolve` opens a new one.
        """
        if self._socket is not None:
            self._socket.close()
            self._socket = None
            self._address = None
