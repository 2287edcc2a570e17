"""The public API's auth gate, `PublicKeyDep` / `SecretKeyDep`: authenticate, check the Origin,
apply rate limits.

Order matters: the key format is checked before any lookup; every failure to resolve a key gives
the same 401 body; the Origin check decides whether CORS headers are sent (see public/cors.py).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.deps import KeyResolverDep, RateLimiterDep, TrustedNetworksDep
from app.errors import Forbidden, Unauthorized
from app.keys.service import ApiKey
from app.observability.context import bind_chatbot
from app.public.cors import CORS_STATE
from app.public.origins import origin_allowed
from app.ratelimit.client_ip import client_ip
from app.ratelimit.service import Budget

INVALID_KEY = "missing, invalid, revoked or expired API key"


def presented_key(request: Request) -> str | None:
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None
    key = request.headers.get("x-api-key")
    return key.strip() if key else None


def request_client_ip(request: Request, trusted: TrustedNetworksDep) -> str:
    peer = request.client.host if request.client else None
    return client_ip(peer, request.headers.get("x-forwarded-for"), trusted)


ClientIpDep = Annotated[str, Depends(request_client_ip)]


async def authenticate(request: Request, resolver: KeyResolverDep, limiter: RateLimiterDep, ip: ClientIpDep) -> ApiKey:
    # Failed attempts are budgeted per IP. Once the budget is spent every request from that IP is
    # refused *before* its key is looked up, until the window passes: guessing really stops, since
    # even a correct guess is not answered.
    failures = Budget("auth", ip, limiter.auth_failures)
    await limiter.refuse_if_exhausted(failures)
    raw = presented_key(request)
    key = await resolver.resolve(raw) if raw else None
    if key is None:
        await limiter.count(failures)
        raise Unauthorized(INVALID_KEY, headers={"WWW-Authenticate": "Bearer"})
    bind_chatbot(key.chatbot.id)
    origin = request.headers.get("origin")
    if origin is None and request.headers.get("sec-fetch-site") == "same-origin":
        # Browsers omit Origin on same-origin GETs (e.g. the widget on the engine's /demo page).
        origin = f"{request.url.scheme}://{request.headers.get('host', '')}"
    state = request.scope.setdefault("state", {})
    if origin is not None or not key.is_secret:
        # Browsers always send Origin on cross-origin fetches; publishable keys must come with one.
        if not origin_allowed(origin, key.chatbot.allowed_domains):
            state[CORS_STATE] = "rejected"
            raise Forbidden("this Origin is not allowed for this chatbot")
        state[CORS_STATE] = "allowed"
    limits = key.chatbot.rate_limits
    await limiter.check(
        [
            Budget("key", str(key.id), limiter.per_minute(limits.get("key_per_minute"), limiter.default_key)),
            Budget("ip", f"{key.chatbot.id}:{ip}", limiter.per_minute(limits.get("ip_per_minute"), limiter.default_ip)),
        ]
    )
    request.state.api_key = key
    return key


PublicKeyDep = Annotated[ApiKey, Depends(authenticate)]


async def require_secret(key: PublicKeyDep) -> ApiKey:
    if not key.is_secret:
        raise Forbidden("this endpoint needs a secret key (cbp_sk_...)")
    return key


SecretKeyDep = Annotated[ApiKey, Depends(require_secret)]
