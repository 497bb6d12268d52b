"""
The twistd plugin for ``twistd mnemic``; it loads mnemic only when used.
"""

from twisted.application.service import ServiceMaker

mnemic = ServiceMaker(
    "mnemic",
    "mnemic.tap",
    "Store samples from dolon-traced programs in PostgreSQL and chart them.",
    "mnemic",
)
