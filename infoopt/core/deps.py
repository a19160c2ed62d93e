"""FastAPI dependencies as typed aliases: the request's database session and the long-lived services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from redis.asyncio import Redis
from sqlmodel.ext.asyncio.session import AsyncSession

from infoopt.db import transaction
from infoopt.settings import Settings
from knowledge_base.cache import PublishedCache

if TYPE_CHECKING:  # the domain routes use these aliases and must not import the bot through them
    from infoopt.services import Services


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request; it commits when the handler succeeds and rolls back when it raises."""
    async with transaction(get_services(request).sessions) as session:
        yield session


def get_redis(request: Request) -> Redis:
    return get_services(request).redis


def get_kb_cache(request: Request) -> PublishedCache:
    return get_services(request).kb_cache


def get_app_settings(request: Request) -> Settings:
    return get_services(request).settings


SessionDep = Annotated[AsyncSession, Depends(get_session)]
RedisDep = Annotated[Redis, Depends(get_redis)]
KbCacheDep = Annotated[PublishedCache, Depends(get_kb_cache)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
