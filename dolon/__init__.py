"""
dolon, the client library of mnemic: samples diagnostics of a running Python
program and sends them over UDP to the mnemic service.

The public API is in :mod:`dolon.trace_client`.
"""

from .trace_client import (
    ConfigurationError,
    DolonError,
    Tracer,
    start_tracer,
)

__all__ = ["ConfigurationError", "DolonError", "Tracer", "start_tracer"]
