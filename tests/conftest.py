"""Shared fixtures: a running stand-in of both services, small by default."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from archiver.standin import DatasetSpec, StandIn

if TYPE_CHECKING:
    from tests.bucket import Bucket

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


# The bucket tests' credentials: dummies for the loopback S3 server, and no user's ~/.aws.
os.environ.update(
    AWS_ACCESS_KEY_ID="archiver-test",
    AWS_SECRET_ACCESS_KEY="archiver-test-secret",
    AWS_CONFIG_FILE=os.devnull,
    AWS_SHARED_CREDENTIALS_FILE=os.devnull,
)
os.environ.pop("AWS_PROFILE", None)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A loopback S3 API (moto's server), one for the whole session."""
    from tests.bucket import start_server

    yield from start_server()


@pytest.fixture
def bucket(s3_endpoint: str) -> Bucket:
    """A new empty bucket on the loopback S3 API."""
    from tests.bucket import new_bucket

    return new_bucket(s3_endpoint)
