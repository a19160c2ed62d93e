"""FastAPI dependencies as typed aliases: the request's database session, Redis and the settings.

The wiring puts its long-lived services on `app.state.services`; the kernel knows only the parts every
package shares (a session factory, Redis, the settings). Each package adds its own aliases for the rest.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any, Protocol

from fastapi import Depends, Request
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from infoopt.core.db import transaction
from infoopt.core.settings import Settings


class SharedServices(Protocol):
    sessions: async_sessionmaker[AsyncSession]
    redis: Redis
    settings: Settings


def get_services(request: Request) -> Any:
    """The process's long-lived services as the wiring built them (each package names what it uses)."""
    return request.app.state.services


def _shared(request: Request) -> SharedServices:
    services: SharedServices = request.app.state.services
    return services


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request; it commits when the handler returns and rolls back when it raises.

    Scoped to the handler ("function"): the commit happens before the response goes out, so the next
    request (after a redirect, say) sees it, and a failed commit is an error, not a silent loss.
    """
    async with transaction(_shared(request).sessions) as session:
        yield session


def get_redis(request: Request) -> Redis:
    return _shared(request).redis


def client_address(request: Request) -> str:
    """The client's address: the connecting one, or the one a trusted proxy forwarded (see the app)."""
    return request.client.host if request.client else "unknown"


def get_app_settings(request: Request) -> Settings:
    return _shared(request).settings


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
RedisDep = Annotated[Redis, Depends(get_redis)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
