"""What the HTTP benches share: a transport that counts the requests it sends."""

from __future__ import annotations

import httpx


class Counter(httpx.HTTPTransport):
    """An httpx transport that counts the requests that go through it."""

    def __init__(self) -> None:
        super().__init__()
        self.requests = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        return super().handle_request(request)
