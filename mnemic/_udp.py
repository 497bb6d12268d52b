"""
Open the UDP socket for samples, with options ``listenUDP`` cannot set.
"""

from __future__ import annotations

import socket
import sys
from typing import Any

from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

log = Logger()

# Large enough for one datagram of the earlier release's clients, which did
# not limit their size; the decoder rejects anything over its own limit.
MAX_PACKET_SIZE = 65536

UDP_READ_BYTES_PER_TURN = 32 * 1024


def listen_udp(
    reactor: Any,
    port: int,
    protocol: DatagramProtocol,
    interface: str,
    receive_buffer: int,
    reuse_port: bool = False,
) -> IListeningPort:
    """
    Bind a UDP socket and hand it to the reactor.

    :param receive_buffer: bytes requested for the kernel's receive buffer.
        The default of about 208 KiB overflows in bursts; an unprivileged
        process gets at most ``net.core.rmem_max``.
    :param reuse_port: set SO_REUSEPORT, so that several processes share the
        port and the kernel spreads datagrams between them (Linux 3.9 and
        later, and the BSDs).
    :raises OSError: if the socket cannot be bound.
    """
    family = socket.AF_INET6 if ":" in interface else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if reuse_port:
            if not hasattr(socket, "SO_REUSEPORT"):
                raise OSError("SO_REUSEPORT is not available on this system")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        _set_receive_buffer(sock, receive_buffer)
        sock.bind((interface, port))
        sock.setblocking(False)
        # adoptDatagramPort duplicates the descriptor, so ours is closed below.
        listening: IListeningPort = reactor.adoptDatagramPort(
            sock.fileno(), family, protocol, MAX_PACKET_SIZE
        )
    finally:
        sock.close()
    # Twisted reads up to maxThroughput bytes (256 KiB by default, about 1,700
    # samples) before the reactor serves anything else. Under a flood that
    # starves the database connection, whose every round trip waits for a
    # turn, so the writer falls behind; 32 KiB keeps both moving.
    listening.maxThroughput = UDP_READ_BYTES_PER_TURN  # type: ignore[attr-defined]
    return listening


# Python's socket module does not export SO_RCVBUFFORCE; 33 is its value in
# Linux's <asm-generic/socket.h>.
_SO_RCVBUFFORCE = getattr(
    socket, "SO_RCVBUFFORCE", 33 if sys.platform.startswith("linux") else None
)


def _set_receive_buffer(sock: socket.socket, size: int) -> None:
    # SO_RCVBUFFORCE passes net.core.rmem_max, but only for privileged
    # processes; others fall back to SO_RCVBUF, which the kernel caps.
    for option in (_SO_RCVBUFFORCE, socket.SO_RCVBUF):
        if option is None:
            continue
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, size)
            break
        except OSError:
            continue
    granted = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    # Linux reports twice the size it was asked for, to cover its bookkeeping.
    if granted < size:
        log.warn(
            "UDP receive buffer is {granted} bytes, less than the {wanted}"
            " requested; raise net.core.rmem_max to absorb larger bursts",
            granted=granted, wanted=size,
        )
