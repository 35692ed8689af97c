"""Keeping secrets out of every text archiver writes: logs, summaries, reports.

Configured credentials are registered when the config is loaded, and tokens minted during a
run as soon as they arrive; every log line and report passes through `REDACT`. A secret is
also looked for in the escaped forms text gives it (inside JSON, a Python repr, a URL), since
a report or a JSON log line is redacted after it is encoded.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

MIN_LENGTH = 4  # shorter values would blank out ordinary words


def forms(secret: str) -> set[str]:
    """`secret` as written plainly, and as JSON, a repr and a URL would escape it."""
    return {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        repr(secret)[1:-1],
        quote(secret, safe=""),
        quote_plus(secret),
    }


class Redactor:
    """Replaces every configured secret in a text with `***`."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets: list[str] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        found = {f for s in secrets if len(s) >= MIN_LENGTH for f in forms(s)}
        # Longest first, so that a secret inside a longer one's escaped form goes with it.
        self.secrets = sorted(
            {*self.secrets, *(f for f in found if len(f) >= MIN_LENGTH)}, key=len, reverse=True
        )

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


REDACT = Redactor()
