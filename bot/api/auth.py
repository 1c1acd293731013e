"""Bearer tokens from CADENCE_API_TOKENS (`label=token` or a bare token), compared in constant time.

A label may end in `:read`: that token may only read (GET); any other request with it is a 403. Without
it a token reads and writes. A label may name teams, `pipeline@recsys+search=…`: that token changes only
those teams' work (the services check it, through teams.TOKEN_TEAMS)."""

from __future__ import annotations

import hmac
import math
import re
import time
from dataclasses import dataclass

from fastapi import HTTPException, Request, status
from limits import RateLimitItemPerMinute, storage, strategies

from bot.services.teams import TOKEN_TEAMS


@dataclass(frozen=True)
class ApiToken:
    label: str
    secret: str
    read_only: bool = False
    teams: frozenset[str] | None = None  # None: every team


_LABEL = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,39}(@[a-z0-9_-]{1,40}(\+[a-z0-9_-]{1,40})*)?(:read|:write)?$")
READS = ("GET", "HEAD", "OPTIONS")
MIN_LABELLED_SECRET = 8


def parse_tokens(raw: tuple[str, ...]) -> list[ApiToken]:
    """`label=secret` names a token for the audit log; anything else is a bare secret. A token whose
    `=` is base64 padding (`c2VjcmV0==`) stays whole: what follows `=` must look like a secret."""
    tokens = []
    for n, item in enumerate(raw, start=1):
        item = item.strip()
        label, _, secret = item.partition("=")
        if _LABEL.match(label) and len(secret.rstrip("=")) >= MIN_LABELLED_SECRET:
            named, _, access = label.partition(":")
            name, _, teams = named.partition("@")
            scope = frozenset(teams.split("+")) if teams else None
            tokens.append(ApiToken(name, secret, read_only=access == "read", teams=scope))
        else:
            tokens.append(ApiToken(f"token{n}", item))
    return [t for t in tokens if t.secret]


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"})


class BearerAuth:
    """A FastAPI dependency: the caller's label (for the audit log), or 401; 429 with Retry-After for a
    token past its requests per minute (counted in this process: each replica counts its own)."""

    def __init__(self, tokens: list[ApiToken], *, per_minute: int = 600) -> None:
        self.tokens = tokens
        self.rate = RateLimitItemPerMinute(per_minute)
        self.limiter = strategies.MovingWindowRateLimiter(storage.MemoryStorage())

    async def __call__(self, request: Request) -> str:
        header = request.headers.get("authorization", "")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            raise _unauthorized("Send an API token as 'Authorization: Bearer <token>'.")
        presented_bytes = presented.strip().encode()
        match = None
        for token in self.tokens:  # compare with every token, so timing says nothing about which matched
            if hmac.compare_digest(presented_bytes, token.secret.encode()):
                match = token
        if match is None:
            raise _unauthorized("That API token is not valid.")
        if not self.limiter.hit(self.rate, match.label):
            reset = self.limiter.get_window_stats(self.rate, match.label).reset_time
            wait = max(1, math.ceil(reset - time.time()))
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                detail=f"The token {match.label} made more than {self.rate.amount} requests in a minute; "
                f"try again in {wait} s.",
                headers={"Retry-After": str(wait)},
            )
        if match.read_only and request.method not in READS:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"The token {match.label} may only read (it is labelled :read).",
            )
        TOKEN_TEAMS.set(match.teams)
        return f"api:{match.label}"
