"""
The kernel's counters of one UDP socket, read from ``/proc/net/udp`` (Linux).

When datagrams arrive faster than the reactor reads them, the socket's
receive buffer fills and the kernel drops the rest before mnemic reads them.
Only the kernel counts those drops, per socket, in the ``drops`` column of
``/proc/net/udp`` and ``/proc/net/udp6``.
"""

from __future__ import annotations

import os
from typing import Optional

from twisted.internet.interfaces import IListeningPort

from ._metrics import Metrics

_TABLES = ("/proc/net/udp", "/proc/net/udp6")

# Columns of a /proc/net/udp line, split on whitespace: "sl local_address
# rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
# ref pointer drops".
_QUEUES_COLUMN = 4
_INODE_COLUMN = 9
_DROPS_COLUMN = 12


def socket_counters(inode: int, tables: tuple[str, ...] = _TABLES) -> Optional[
    tuple[int, int]
]:
    """
    Return the bytes waiting in the receive queue of the UDP socket with
    ``inode``, and the datagrams the kernel dropped for it.

    :return: None where the tables do not exist (outside Linux) or do not
        list the socket.
    """
    wanted = str(inode)
    for table in tables:
        try:
            with open(table) as lines:
                for line in lines:
                    columns = line.split()
                    found = len(columns) > _DROPS_COLUMN
                    if found and columns[_INODE_COLUMN] == wanted:
                        return _counters(columns)
        except OSError:
            continue
    return None


def _counters(columns: list[str]) -> tuple[int, int]:
    receive_queue = int(columns[_QUEUES_COLUMN].split(":")[1], 16)
    return receive_queue, int(columns[_DROPS_COLUMN])


def watch_udp_socket(metrics: Metrics, port: IListeningPort) -> None:
    """
    Add the kernel's receive queue and drop counter of ``port`` to
    ``metrics``; they read as NaN where the kernel does not report them.
    """
    inode = os.fstat(port.fileno()).st_ino  # type: ignore[attr-defined]

    def read(index: int) -> float:
        counters = socket_counters(inode)
        return float("nan") if counters is None else float(counters[index])

    metrics.add_gauge(
        "mnemic_udp_receive_queue_bytes",
        "Bytes of datagrams waiting in the UDP socket's receive buffer.",
        lambda: read(0),
    )
    metrics.add_counter(
        "mnemic_udp_kernel_drops_total",
        "Datagrams the kernel dropped because the UDP receive buffer was full.",
        lambda: read(1),
    )
