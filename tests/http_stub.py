"""Answers outgoing HTTP without a network, below the provider client libraries.

``requests`` (anymail's ESP backends, twilio's HttpClient, google-auth and firebase-admin) is stubbed at
``HTTPAdapter.send`` and botocore (anymail's Amazon SES backend) at ``URLLib3Session.send``: everything
above, the libraries' own request building, signing, response parsing and errors, runs for real.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from urllib.parse import parse_qs

import requests
from requests.structures import CaseInsensitiveDict


@dataclasses.dataclass
class Seen:
    method: str
    url: str
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode())


@dataclasses.dataclass
class Route:
    method: str
    pattern: re.Pattern
    answer: Callable[[Seen], tuple[int, object]]


def _as_bytes(body) -> bytes:
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode()
    if hasattr(body, "read"):
        return body.read()
    return bytes(body)


class HttpStub:
    def __init__(self):
        self.routes: list[Route] = []
        self.seen: list[Seen] = []

    def add(self, method: str, url_pattern: str, status: int = 200, body: object = None, *, answer=None) -> None:
        """Answer ``method`` on URLs matching ``url_pattern`` with ``status`` and a JSON (or bytes) body.

        ``answer(seen) -> (status, body)`` (or ``(status, body, headers)``) decides per request instead. The last
        matching route wins.
        """
        self.routes.append(Route(method.upper(), re.compile(url_pattern), answer or (lambda seen: (status, body))))

    def to(self, url_fragment: str) -> list[Seen]:
        return [seen for seen in self.seen if url_fragment in seen.url]

    def _answer(self, method: str, url: str, headers, body) -> tuple[int, bytes, dict]:
        seen = Seen(method=method, url=url, headers=CaseInsensitiveDict(dict(headers)), body=_as_bytes(body))
        self.seen.append(seen)
        for route in reversed(self.routes):
            if route.method == method and route.pattern.search(url):
                status, payload, *extra = route.answer(seen)  # (status, body[, extra response headers])
                headers = extra[0] if extra else {}
                if isinstance(payload, bytes | str):
                    return status, _as_bytes(payload), {"Content-Type": "text/plain", **headers}
                content = b"" if payload is None else json.dumps(payload).encode()
                return status, content, {"Content-Type": "application/json", **headers}
        raise AssertionError(f"Unexpected HTTP request: {method} {url}")

    def requests_send(self, adapter, request, **kwargs):
        status, content, headers = self._answer(request.method, request.url, request.headers, request.body)
        response = requests.Response()
        response.status_code = status
        response._content = content
        response.headers = CaseInsensitiveDict(headers)
        response.url = request.url
        response.request = request
        response.encoding = "utf-8"
        response.reason = "stubbed"
        return response

    def botocore_send(self, session, request):
        from botocore.awsrequest import AWSResponse

        status, content, headers = self._answer(request.method, request.url, request.headers, request.body)

        class Raw:
            def stream(self, **kwargs):
                yield content

        return AWSResponse(request.url, status, headers, Raw())
