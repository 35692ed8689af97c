"""Fault rules: which requests the stand-in misbehaves on, and how.

A test adds `Fault`s; each request asks `Faults.take` for the first rule that matches its path
(an fnmatch pattern) and listing page, and that rule is used up by one. What each kind does on
the wire lives in `wire` (responses) and in the sites (where a kind bends normal handling).

Kinds: `http_status`, `api_code`, `reset`, `slow`, `bad_json`, `wrong_shape`, `truncate`,
`ignore_range`, `replace`, `stall`, `expired`, `retry_after`, `redirect`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from fnmatch import fnmatchcase

KINDS = frozenset(
    {
        "http_status",
        "api_code",
        "reset",
        "slow",
        "bad_json",
        "wrong_shape",
        "truncate",
        "ignore_range",
        "replace",
        "stall",
        "expired",
        "retry_after",
        "redirect",
    }
)
SHAPES = frozenset({"data_null", "data_string", "list_object", "items_not_objects"})


@dataclass
class Fault:
    """One way to misbehave, on the next `times` requests whose path matches `path`.

    `times` = -1 hits every matching request. `page` limits a rule to one page of a listing.
    `value` is the kind's parameter: a status, a code, seconds, bytes, a shape or a URL.
    `fired` counts the requests the rule has hit so far.
    """

    kind: str
    path: str = "*"
    times: int = 1
    page: int | None = None
    value: float | int | str | None = None
    fired: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; known: {sorted(KINDS)}")
        if self.times == 0 or self.times < -1:
            raise ValueError("times must be a positive count, or -1 for every request")
        if self.kind == "wrong_shape" and self.value not in SHAPES:
            raise ValueError(f"wrong_shape needs value in {sorted(SHAPES)}")
        if self.kind == "redirect" and not isinstance(self.value, str):
            raise ValueError("redirect needs value = the Location URL")
        if self.kind == "api_code" and not isinstance(self.value, int):
            raise ValueError("api_code needs value = the code (an int)")
        if self.kind == "http_status" and not isinstance(self.value, int | None):
            raise ValueError("http_status needs value = the status (an int, default 500)")

    @property
    def spent(self) -> bool:
        """True once the rule has hit as many requests as it was meant to."""
        return self.times != -1 and self.fired >= self.times

    def matches(self, path: str, page: int | None) -> bool:
        """Whether a request for `path` (and listing `page`) is one this rule is meant for."""
        if self.spent or not fnmatchcase(path, self.path):
            return False
        return self.page is None or self.page == page

    def number(self, default: float) -> float:
        """`value` as a number, or `default` when unset."""
        return default if self.value is None else float(self.value)


class Faults:
    """The active fault rules of one stand-in, in the order they were added."""

    def __init__(self) -> None:
        self.rules: list[Fault] = []
        self._fired: Counter[str] = Counter()

    def add(self, fault: Fault) -> Fault:
        """Arm `fault` and return it (its `fired` shows how often it hit)."""
        self.rules.append(fault)
        return fault

    def clear(self) -> None:
        """Disarm every rule (the fired counts stay)."""
        self.rules.clear()

    def take(self, path: str, page: int | None = None) -> Fault | None:
        """The first rule that matches this request, counted as fired; None if none does."""
        for fault in self.rules:
            if fault.matches(path, page):
                fault.fired += 1
                self._fired[fault.kind] += 1
                return fault
        return None

    def fired(self, kind: str | None = None) -> int:
        """How many requests faults of `kind` (any kind when None) have hit."""
        return self._fired.total() if kind is None else self._fired[kind]

    def fired_counts(self) -> dict[str, int]:
        """Requests hit, per fault kind."""
        return dict(self._fired)
