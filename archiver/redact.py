"""Keeping secrets out of every text archiver writes: logs, summaries, reports.

Configured credentials are registered when the config is loaded, and tokens minted during a
run as soon as they arrive; every log line and report passes through `REDACT`.
"""

from __future__ import annotations

from collections.abc import Iterable


class Redactor:
    """Replaces every configured secret in a text with `***`."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def add(self, secrets: Iterable[str]) -> None:
        self.secrets = sorted(
            {*self.secrets, *(s for s in secrets if len(s) >= 4)}, key=len, reverse=True
        )

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


REDACT = Redactor()
