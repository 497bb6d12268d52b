"""
Signing of datagrams with a shared secret (HMAC-SHA256), in the format of
docs/protocol.md.
"""

from __future__ import annotations

import hmac
import os
from typing import Union

from ._errors import ConfigurationError

#: Bytes a signature adds to a datagram: ``,"sig":"``, 64 hex digits and ``"``
#: (the closing ``}`` was there before).
SIGNATURE_BYTES = 73

#: Environment variable read when no ``secret`` argument is given.
SECRET_ENVIRONMENT_VARIABLE = "DOLON_SECRET"

# Union rather than |, because this alias is evaluated at run time on
# Python 3.9 too.
Secret = Union[str, bytes, None]  # noqa: UP007


def resolve_secret(secret: Secret) -> bytes | None:
    """
    Return the secret to sign with: ``secret``, else ``DOLON_SECRET``, as
    bytes without surrounding whitespace, or None when neither is set.

    :raise ConfigurationError: if the secret is empty or not text or bytes.
    """
    source = "secret"
    if secret is None:
        secret = os.environ.get(SECRET_ENVIRONMENT_VARIABLE)
        if secret is None:
            return None
        source = SECRET_ENVIRONMENT_VARIABLE
    if isinstance(secret, str):
        try:
            data = secret.encode("utf-8")
        except UnicodeEncodeError:
            raise ConfigurationError(f"{source} is not valid Unicode text") from None
    elif isinstance(secret, bytes):
        data = secret
    else:
        raise ConfigurationError(
            f"{source} must be str or bytes, not {type(secret).__name__}"
        )
    data = data.strip()
    if not data:
        raise ConfigurationError(f"{source} is empty; give mnemic's shared secret")
    return data


def sign(datagram: bytes, secret: bytes) -> bytes:
    """
    Return ``datagram``, a JSON object, with its signature as the last member.
    """
    digest = hmac.digest(secret, datagram, "sha256").hex()
    return datagram[:-1] + b',"sig":"' + digest.encode("ascii") + b'"}'
