"""
Signed datagrams: HMAC-SHA256 verification and replay detection.

With a shared secret configured, every datagram must end with a signature
member, ``,"sig":"<64 lowercase hex digits>"}``, in place of the closing brace
of its JSON object. The signature is the HMAC-SHA256 of the datagram without
that member, that is with the 74 bytes replaced by ``}``. The format is
described in docs/protocol.md.

The signature is checked on the raw bytes before any parsing, so a client
without the secret cannot reach the JSON decoder at all.
"""

from __future__ import annotations

import hmac
import os
import uuid
from collections import OrderedDict
from typing import Optional

from ._protocol import (
    MAX_DATAGRAM_BYTES,
    Announcement,
    InvalidDatagram,
    Message,
    decode_datagram,
)

SIGNATURE_PREFIX = b',"sig":"'
SIGNATURE_HEX_DIGITS = 64

# The bytes a signature adds to a datagram: the prefix, the hex digits and the
# closing '"', since the '}' that ends the object was there before.
SIGNATURE_BYTES = len(SIGNATURE_PREFIX) + SIGNATURE_HEX_DIGITS + 1

# Sequence numbers this far below the highest one seen for a run are rejected
# as replays. Closer ones are accepted once each, because UDP may reorder them.
REPLAY_WINDOW = 1024

# Runs whose sequence numbers are tracked. Only signed datagrams add runs, so
# only holders of the secret can grow this, and the oldest run is forgotten
# first.
MAX_TRACKED_RUNS = 100_000

SECRET_ENVIRONMENT_VARIABLE = "MNEMIC_SECRET"


class SecretError(Exception):
    """
    A secret file that cannot be read, or a secret that is empty.
    """


def normalize_secret(secret: bytes) -> bytes:
    """
    Return the secret without the whitespace around it, which editors and
    ``echo`` add to files.

    :raises SecretError: if nothing is left.
    """
    stripped = secret.strip()
    if not stripped:
        raise SecretError("the secret is empty")
    return stripped


def read_secret_file(path: str) -> bytes:
    """
    Read a shared secret from ``path``.

    :raises SecretError: if the file cannot be read or is empty.
    """
    try:
        with open(path, "rb") as secret_file:
            content = secret_file.read()
    except OSError as error:
        raise SecretError(f"cannot read {path}: {error.strerror}") from None
    try:
        return normalize_secret(content)
    except SecretError:
        raise SecretError(f"{path} is empty") from None


def secret_from_environment() -> Optional[bytes]:
    """
    Return the secret in ``MNEMIC_SECRET`` as UTF-8 bytes, or None if unset.

    :raises SecretError: if the variable is set but empty.
    """
    value = os.environ.get(SECRET_ENVIRONMENT_VARIABLE)
    if value is None:
        return None
    try:
        return normalize_secret(value.encode("utf-8", "surrogateescape"))
    except SecretError:
        raise SecretError("the variable is set but empty") from None


def sign(datagram: bytes, secret: bytes) -> bytes:
    """
    Return ``datagram``, a JSON object, with its signature member appended.
    """
    digest = hmac.digest(secret, datagram, "sha256").hex().encode("ascii")
    return datagram[:-1] + SIGNATURE_PREFIX + digest + b'"}'


class SignedDecoder:
    """
    Decodes signed datagrams, rejecting unsigned, wrongly signed and replayed
    ones with `InvalidDatagram`.

    An instance is called like `decode_datagram`, which it wraps.
    """

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        # Per run: the highest sequence number seen, and a bit mask of the
        # numbers seen below it (bit i set: highest - i was seen).
        self._seen: OrderedDict[uuid.UUID, tuple[int, int]] = OrderedDict()

    def __call__(self, datagram: bytes, now: Optional[float] = None) -> Message:
        """
        Verify the signature of one datagram, then decode it.

        :raises InvalidDatagram: with reason ``unsigned``, ``bad_signature``
            or ``replay``, or any reason of `decode_datagram`.
        """
        payload = self._verify(datagram)
        message = decode_datagram(payload, now)
        if isinstance(message, Announcement):
            if message.protocol != 1:
                raise InvalidDatagram("bad_version", "signed earlier-release message")
            return message
        if message.seq is None:
            raise InvalidDatagram("bad_version", "signed earlier-release message")
        self._check_replay(message.run_id, message.seq)
        return message

    def _verify(self, datagram: bytes) -> bytes:
        if len(datagram) > MAX_DATAGRAM_BYTES:
            raise InvalidDatagram("oversize", f"{len(datagram)} bytes")
        start = len(datagram) - SIGNATURE_BYTES - 1
        if (
            start < 1
            or not datagram.endswith(b'"}')
            or datagram[start:start + len(SIGNATURE_PREFIX)] != SIGNATURE_PREFIX
        ):
            raise InvalidDatagram("unsigned")
        payload = datagram[:start] + b"}"
        expected = hmac.digest(self._secret, payload, "sha256").hex().encode("ascii")
        if not hmac.compare_digest(expected, datagram[-SIGNATURE_HEX_DIGITS - 2:-2]):
            raise InvalidDatagram("bad_signature")
        return payload

    def _check_replay(self, run_id: uuid.UUID, seq: int) -> None:
        state = self._seen.get(run_id)
        if state is None:
            self._seen[run_id] = (seq, 1)
            if len(self._seen) > MAX_TRACKED_RUNS:
                self._seen.popitem(last=False)
            return
        self._seen.move_to_end(run_id)

        highest, mask = state
        if seq > highest:
            shift = seq - highest
            mask = 1 if shift >= REPLAY_WINDOW else (mask << shift | 1) & _WINDOW_MASK
            self._seen[run_id] = (seq, mask)
            return
        offset = highest - seq
        if offset >= REPLAY_WINDOW or mask >> offset & 1:
            raise InvalidDatagram("replay", f"seq {seq}, highest seen {highest}")
        self._seen[run_id] = (highest, mask | 1 << offset)


_WINDOW_MASK = (1 << REPLAY_WINDOW) - 1
