"""
mnemic: the service that stores dolon's samples in PostgreSQL and draws them.

Start it with ``twistd -n mnemic``; see ``mnemic.tap`` for its options.
"""

__all__: list[str] = []
