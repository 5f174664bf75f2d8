"""Custom auth for the LangGraph server: bearer tokens, and every thread scoped to its owner.

`langgraph.json` points at `auth` here, so langgraph-api calls `authenticate` on every
request and the `on` handlers on every resource access. Tokens come from the operator's
environment, `ADAPTSUM_API_TOKENS="alice:token1,bob:token2"`; a request without one of
them gets 401. Threads, runs and crons are tagged with their owner's identity and
filtered by it, so users neither see nor continue each other's threads; the graph
also keeps each user's documents in an index of their own (`engines.factory.index_for`
reads the identity from the run's config). Assistants are read-only for callers.

`ADAPTSUM_AUTH=none` turns authentication off (one shared "anonymous" user): for a
server only its own machine can reach, e.g. `langgraph dev` for Studio. Replace
`authenticate` with a check against your identity provider (JWT, OAuth) in production.
"""

from __future__ import annotations

import hmac
import os

from langgraph_sdk import Auth

auth = Auth()


def _tokens() -> dict[str, str] | None:
    """Token → user identity from ADAPTSUM_API_TOKENS; None when auth is turned off."""
    if os.environ.get("ADAPTSUM_AUTH", "").strip().lower() == "none":
        return None
    tokens: dict[str, str] = {}
    for pair in os.environ.get("ADAPTSUM_API_TOKENS", "").split(","):
        user, sep, token = pair.strip().partition(":")
        if sep and user and token:
            tokens[token] = user
    return tokens


@auth.authenticate
async def authenticate(authorization: str | None) -> Auth.types.MinimalUserDict:
    """The caller's identity from `Authorization: Bearer <token>`; 401 without a valid one."""
    tokens = _tokens()
    if tokens is None:
        return {"identity": "anonymous"}
    if not tokens:
        raise Auth.exceptions.HTTPException(
            status_code=401,
            detail="the server has no API tokens: its operator must set ADAPTSUM_API_TOKENS",
        )
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Auth.exceptions.HTTPException(
            status_code=401, detail="missing 'Authorization: Bearer <token>' header"
        )
    for known, user in tokens.items():
        if hmac.compare_digest(known.encode(), token.encode()):
            return {"identity": user}
    raise Auth.exceptions.HTTPException(status_code=401, detail="invalid token")


@auth.on.assistants
async def assistants_read_only(ctx: Auth.types.AuthContext, value: dict) -> None:
    """Everyone may list and read the operator's assistants; nobody may change them."""
    if ctx.action in {"create", "update", "delete"}:
        raise Auth.exceptions.HTTPException(
            status_code=403, detail="assistants are managed by the server's operator"
        )


@auth.on
async def owner_only(ctx: Auth.types.AuthContext, value: dict) -> dict[str, str]:
    """Tag what a user creates with their identity and show them only what carries it."""
    filters = {"owner": ctx.user.identity}
    if isinstance(value, dict):
        if not isinstance(value.get("metadata"), dict):
            value["metadata"] = {}
        value["metadata"].update(filters)  # in place: the server keeps this very dict
    return filters
