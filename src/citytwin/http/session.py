"""Signing a browser in: ``/api/v1/session`` (docs/security.md, "The browser").

``POST`` with ``{"key": "<API key>"}`` checks the key and answers with a session cookie
that holds a short-lived token made from it (:mod:`citytwin.access.tokens`), never the
key: HttpOnly, so page scripts cannot read it, and SameSite=Strict, so other sites cannot
send requests with it. ``GET`` tells the page who it is signed in as, with a token for
its MQTT connection (WebSockets to the broker's own port carry no cookie to check);
``DELETE`` signs out. Without access control there is nobody to sign in: ``GET`` says
so and the others answer 404.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from http.cookies import CookieError, SimpleCookie
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from citytwin.access import Principal
from citytwin.access.tokens import TOKEN_PREFIX, issue
from citytwin.errors import BadRequest, CitytwinError
from citytwin.service import Service

PATH = "/api/v1/session"
SESSION_COOKIE = "citytwin_session"
MQTT_USERNAME = "citytwin-session"  # the password is the token; any username would do
JSON = "application/json"


def session_cookie(header: str) -> str | None:
    """The session token in a ``Cookie`` header, if there is one."""
    try:
        jar = SimpleCookie(header)
    except CookieError:
        return None
    morsel = jar.get(SESSION_COOKIE)
    if morsel is None or not morsel.value.startswith(TOKEN_PREFIX):
        return None  # only tokens travel in cookies: a key there would be a mistake
    return morsel.value


def _describe(principal: Principal) -> dict[str, Any]:
    return {
        "accessControl": True,
        "signedIn": principal.identity.startswith("key:"),  # sessions are made from keys
        "identity": principal.identity,
        "role": str(principal.role),
        "organisation": principal.organisation_name,
    }


def _json(doc: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(doc), status_code=status, media_type=JSON)


def routes(
    service: Service, principal_of: Callable[[Request], Awaitable[Principal]]
) -> list[Route]:
    """The session routes; only where access control is on (off, nobody signs in)."""

    async def sign_in(request: Request) -> Response:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f'the body must be JSON like {{"key": "..."}}: {exc}') from exc
        key = body.get("key") if isinstance(body, dict) else None
        if not isinstance(key, str) or not key.strip():
            raise BadRequest('the body must name the API key: {"key": "ct_..."}')
        if key.startswith(TOKEN_PREFIX):
            raise BadRequest("sign in with an API key, not with a session token")
        principal = await service.authenticate(key.strip())
        token = await issue(service.storage, principal)
        resp = _json({**_describe(principal), "expires": token.expires})
        resp.set_cookie(
            SESSION_COOKIE,
            token.value,
            expires=token.expires,
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return resp

    async def who(request: Request) -> Response:
        if not service.auth:  # everyone may do everything: nobody needs to sign in
            return _json({"accessControl": False, "signedIn": False})
        principal = await principal_of(request)
        doc = _describe(principal)
        if doc["signedIn"]:
            token = await issue(service.storage, principal)
            doc["expires"] = token.expires
            doc["mqtt"] = {"username": MQTT_USERNAME, "password": token.value}
        resp = _json(doc)
        if not doc["signedIn"] and SESSION_COOKIE in request.cookies:
            resp.delete_cookie(SESSION_COOKIE, path="/")  # expired or revoked: forget it
        return resp

    async def sign_out(request: Request) -> Response:
        resp = Response(status_code=204)
        resp.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return resp

    def errors(
        handler: Callable[[Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def wrapped(request: Request) -> Response:
            if not service.auth and request.method != "GET":
                return _json(
                    {"code": 404, "type": "error", "message": "access control is off: no sessions"},
                    404,
                )
            try:
                return await handler(request)
            except CitytwinError as exc:
                return _json(exc.to_json(), exc.status)

        return wrapped

    return [
        Route(PATH, errors(sign_in), methods=["POST"]),
        Route(PATH, errors(who), methods=["GET", "HEAD"]),
        Route(PATH, errors(sign_out), methods=["DELETE"]),
    ]
