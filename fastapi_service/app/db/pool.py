"""The asyncpg pools: created once per process, pgvector registered on every connection.

API processes open a second pool for searches, whose connections run PostgreSQL's generic plans
(`plan_cache_mode = force_generic_plan`): a search statement is planned once per connection, not
once per search. `auto` kept re-planning it for small chatbots, which cost a 500-chunk chatbot's
search about half of its ~1.1 ms in PostgreSQL (bench/search_statement.py; docs/benchmarks.md).
One plan for every chatbot is safe because migration 0312 declares each chatbot a small share of
the tables (the plan reads a chatbot's rows through the indexes); large chatbots, searched with
HNSW, are planned for themselves (`retrieval.repository.large_chatbot_search`). Every other
statement keeps PostgreSQL's `auto`.

A search changes no session state (its settings are `SET LOCAL`, in a transaction), so the search
pool returns a connection with asyncpg's own cleanup only (an open transaction rolled back,
listeners removed) and without its reset statement (advisory unlocks, `CLOSE ALL`, `UNLISTEN *`,
`RESET ALL`): one round trip less per search.
"""

from __future__ import annotations

import json
from typing import TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from pgvector.asyncpg import register_vector

from app.config import Settings

# What repositories take: a connection of their own or a pool's (`async with pool.acquire()`).
Connection: TypeAlias = asyncpg.Connection | PoolConnectionProxy


async def init_connection(conn: asyncpg.Connection) -> None:
    await register_vector(conn)
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def keep_session(conn: asyncpg.Connection) -> None:
    """The search pool's `reset`: nothing beyond asyncpg's cleanup, which runs before it."""


async def create_pool(settings: Settings, dsn: str, *, searches: bool = False) -> asyncpg.Pool:
    """The process's pool (DB_POOL_MIN..DB_POOL_MAX connections), or with `searches` its search
    pool (DB_POOL_MIN..DB_SEARCH_POOL_MAX, generic plans)."""
    if searches:
        min_size, max_size = min(settings.db_pool_min, settings.db_search_pool_max), settings.db_search_pool_max
    else:
        min_size, max_size = settings.db_pool_min, max(settings.db_pool_max, settings.db_pool_min)
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        command_timeout=settings.db_command_timeout,
        timeout=10,
        init=init_connection,
        server_settings={"plan_cache_mode": "force_generic_plan"} if searches else None,
        reset=keep_session if searches else None,
    )
    assert pool is not None
    return pool
