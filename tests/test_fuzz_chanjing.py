"""Property-based tests of the other Chanjing lists' records, their pages and their views.

Any JSON value as a record of a synthesized video, an avatar or an AI creation: parsing returns
one of its three answers, an archived one has usable http(s) files with distinct roles, and the
record's view (what the catalog shows) takes it whatever it holds.
"""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from archiver.errors import MalformedResponse
from archiver.sources.chanjing import ChanjingSource, page_answer
from archiver.sources.chanjing_ai_creation import ChanjingAiCreation
from archiver.sources.chanjing_avatar import ChanjingAvatar
from archiver.sources.chanjing_video import ChanjingVideo
from archiver.sources.parse import parse_task
from archiver.sources.records import ArchiveItem
from tests.test_fuzz import EXAMPLES, IDS, JSON, TEXT, TIMES, URLS, _check


def _record(source: type[ChanjingSource], done: Any) -> Any:
    fields = source.task_fields
    optional = {fields.id_key: IDS, fields.state_key: st.just(done) | JSON}
    optional |= {fields.created_key: TIMES, "type": st.sampled_from([3, 4]) | JSON}
    optional |= {key: URLS for _, key in fields.media + fields.optional}
    if fields.media_list is not None:
        optional[fields.media_list[1]] = st.lists(URLS, max_size=4) | JSON
    return st.fixed_dictionaries({}, optional=optional) | JSON


RECORDS = (
    st.tuples(st.just(ChanjingVideo), _record(ChanjingVideo, 30))
    | st.tuples(st.just(ChanjingAvatar), _record(ChanjingAvatar, 2))
    | st.tuples(st.just(ChanjingAiCreation), _record(ChanjingAiCreation, "Success"))
)


@EXAMPLES
@given(RECORDS)
def test_any_record_of_the_other_lists_parses_safely(
    case: tuple[type[ChanjingSource], Any],
) -> None:
    source, record = case
    listed = parse_task(record, source.task_fields)
    _check(listed)
    if isinstance(listed, ArchiveItem):
        roles = [ref.role for ref in listed.media]
        assert len(set(roles)) == len(roles)
        assert not set(roles) & {role for role, _ in listed.problems}
    source.view("task", record if isinstance(record, dict) else {})


@EXAMPLES
@given(
    st.dictionaries(TEXT, JSON)
    | st.fixed_dictionaries(
        {"data": st.dictionaries(st.sampled_from(["list", "List", "page_info", "PageInfo"]), JSON)}
    )
)
def test_any_page_answer_parses_or_is_malformed(doc: dict[str, Any]) -> None:
    with contextlib.suppress(MalformedResponse):
        answer = page_answer(doc)
        assert isinstance(answer.rows, list)
