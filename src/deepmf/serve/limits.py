"""A request-size limit as plain ASGI middleware."""

from __future__ import annotations

from deepmf.serve.schemas import JSON, Error


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes gets 413 before any handler
    reads it, whether it declares its length or streams in chunks."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or ()).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            return await _too_large(send, self.limit)
        seen, answered = 0, False

        async def limited():
            nonlocal seen, answered
            if answered:
                return {"type": "http.disconnect"}
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:  # answer now; the handler sees the client leave
                answered = True
                await _too_large(send, self.limit)
                return {"type": "http.disconnect"}
            return message

        async def guarded(message):
            if not answered:
                await send(message)

        try:
            await self.app(scope, limited, guarded)
        except Exception:
            if not answered:
                raise


async def _too_large(send, limit: int) -> None:
    body = JSON(Error(detail=f"request body over {limit} bytes")).body
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
