"""
Content negotiation for error responses: whether a request comes from a
browser opening an address, which should get a page rather than JSON.
"""

from __future__ import annotations

from twisted.web.iweb import IRequest


def _quality(accept: str, media_type: str) -> float:
    # The q value of the first element of ``accept`` naming ``media_type``,
    # or 0 when none does. Wildcards are ignored because they do not show
    # which type a client prefers.
    for element in accept.split(","):
        name, *parameters = [part.strip() for part in element.split(";")]
        if name.lower() != media_type:
            continue
        for parameter in parameters:
            key, _, value = parameter.partition("=")
            if key.strip().lower() == "q":
                try:
                    return float(value)
                except ValueError:
                    return 0.0
        return 1.0
    return 0.0


def prefers_html(request: IRequest) -> bool:
    """
    Return whether ``request`` is a GET outside the JSON API whose Accept
    header ranks ``text/html`` above ``application/json``, as a browser's
    navigation does.
    """
    if request.method != b"GET" or request.path.startswith(b"/api/"):
        return False
    values = request.requestHeaders.getRawHeaders(b"accept") or []
    accept = b",".join(values).decode("latin-1")
    html = _quality(accept, "text/html")
    return html > 0 and html > _quality(accept, "application/json")
