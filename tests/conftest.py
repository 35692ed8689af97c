"""Shared fixtures: a running stand-in of both services, small by default."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from archiver.standin import DatasetSpec, StandIn

SMALL_SPEC = DatasetSpec(vth_tasks=30, chanjing_tasks=30, templates=6)

StandInFactory = Callable[..., Awaitable[StandIn]]


@pytest.fixture
async def standin() -> AsyncIterator[StandIn]:
    """A started stand-in with 30 tasks per service and the demo credentials."""
    async with StandIn(SMALL_SPEC) as running:
        yield running


@pytest.fixture
async def make_standin() -> AsyncIterator[StandInFactory]:
    """`await make_standin(spec=None, **StandIn kwargs)`: started now, stopped after the test."""
    started: list[StandIn] = []

    async def make(spec: DatasetSpec | None = None, **kwargs: Any) -> StandIn:
        running = StandIn(spec or SMALL_SPEC, **kwargs)
        await running.start()
        started.append(running)
        return running

    yield make
    for running in reversed(started):
        await running.close()
