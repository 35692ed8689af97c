"""Sources: one module per service, each a `Source` subclass that yields pages of records.

Every module in this package that defines a `Source` subclass with a `type_name` is picked up,
so a new service is one new module and nothing else changes.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from archiver.sources.base import Source, SourceContext

__all__ = ["Source", "SourceContext", "source_types"]


@cache
def source_types() -> dict[str, type[Source]]:
    """Every source type, by the name used as `type:` in the config."""
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")
    found: dict[str, type[Source]] = {}
    pending = list(Source.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if getattr(cls, "type_name", ""):
            found[cls.type_name] = cls
    return found
