"""The stand-in's data: every list of both services and their media, and how tests change them.

Records are generated from the seed when a page is asked for (see `generate`), so the dataset
holds only the order of the tasks, what tests changed, and a counter per replaced media file.
Every accessor returns fresh copies: a test that keeps a record from before a change keeps
what was true then, and no caller can change the service's data by accident.

A media path is served while a current record or template points at it, or once a test put
it in a record by hand; a removed task's files go with it.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from archiver.standin import account, generate
from archiver.standin.content import MediaContents, MediaFile

# `chanjing` is the lip-sync list; `cj_video`, `cj_avatar` and `cj_ai` the account's others.
Service = Literal["vth", "chanjing", "cj_video", "cj_avatar", "cj_ai"]
TaskRef = int | str | Mapping[str, Any]
"""A task's `id` (an AI creation's `unique_id`), or the task's record itself."""

_SERVICES: tuple[Service, ...] = ("vth", "chanjing", "cj_video", "cj_avatar", "cj_ai")
_VTH_MEDIA = re.compile(r"/media/faceWap/prod/(\d+)/")
# The media path of a Chanjing record names its id, so its owner is found without a search.
_CHANJING_MEDIA: tuple[tuple[re.Pattern[str], Service], ...] = (
    (re.compile(r"/media/lip-sync/([0-9a-f]{32})(?:\.\w+)?$"), "chanjing"),
    (re.compile(r"/media/cj-video/([0-9a-f]{32})\.\w+$"), "cj_video"),
    (re.compile(r"/media/avatar/C-([0-9a-f]{32})\.\w+$"), "cj_avatar"),
    (re.compile(r"/media/ai-creation/([0-9a-f-]{36})-\d+\.\w+$"), "cj_ai"),
)
_URL_FIELDS: dict[Service, tuple[str, ...]] = {
    "vth": ("origin", "covering"),
    "chanjing": ("video_url", "preview_url"),
    "cj_video": ("video_url", "preview_url", "subtitle_data_url"),
    "cj_avatar": ("pic_url", "preview_url"),
    "cj_ai": ("output_url",),  # an array of URLs
}
_ID_KEYS: dict[Service, str] = {"cj_ai": "unique_id"}
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_HEX32 = re.compile(r"(?:C-)?[0-9a-f]{32}")
_GENERATORS = {
    "chanjing": generate.chanjing_record,
    "cj_video": account.cj_video_record,
    "cj_avatar": account.cj_avatar_record,
    "cj_ai": account.ai_record,
}
# What a correct archiver archives of each list: (state key, the succeeded value).
_SUCCEEDED: dict[Service, tuple[str, object]] = {
    "vth": ("state", 30),
    "chanjing": ("status", 20),
    "cj_video": ("status", 30),
    "cj_avatar": ("status", 2),
    "cj_ai": ("progress_desc", "Success"),
}


def _record_id(service: Service, record: Any) -> str | None:
    if not isinstance(record, dict):
        return None
    value = record.get(_ID_KEYS.get(service, "id"))
    return None if value is None else str(value)


def _record_urls(service: Service, record: Any) -> Iterator[str]:
    """Every media URL a record names (a field may hold one URL or an array of them)."""
    if not isinstance(record, dict):
        return
    for name in _URL_FIELDS[service]:
        value = record.get(name)
        for url in value if isinstance(value, list) else [value]:
            if isinstance(url, str):
                yield url


class _Absent:
    def __repr__(self) -> str:
        return "ABSENT"

    def __deepcopy__(self, memo: dict[int, Any]) -> _Absent:
        return self  # a marker compared by identity must survive the copies of overrides


ABSENT: Any = _Absent()
"""An override value that removes the field from the record (`update(id, origin=ABSENT)`)."""


@dataclass(frozen=True)
class DatasetSpec:
    """How much data to generate, from which seed, and what its media files hold."""

    vth_tasks: int = 150
    chanjing_tasks: int = 150  # the lip-sync list
    chanjing_videos: int = 20
    chanjing_avatars: int = 12
    ai_creations: int = 30  # images and videos, in one sequence
    templates: int = 6
    seed: int = 1
    media_min_bytes: int = 2_000
    media_max_bytes: int = 40_000
    succeeded_share: float = 0.7
    # Real pictures and videos that a browser shows, each as big as its encoding, instead of
    # random bytes behind a valid header, sized between the two bounds above.
    decodable_media: bool = False

    def __post_init__(self) -> None:
        counts = (self.vth_tasks, self.chanjing_tasks, self.chanjing_videos)
        if min(*counts, self.chanjing_avatars, self.ai_creations, self.templates) < 0:
            raise ValueError("task and template counts must not be negative")
        if not 0.0 <= self.succeeded_share <= 1.0:
            raise ValueError("succeeded_share must be between 0 and 1")
        if self.media_min_bytes > self.media_max_bytes:
            raise ValueError("media_min_bytes must not exceed media_max_bytes")


class Dataset:
    """Both services' tasks, newest first, and the media files they point at."""

    ABSENT = ABSENT

    def __init__(self, spec: DatasetSpec, media_base_url: str = "http://media.invalid") -> None:
        self.spec = spec
        self.media_base_url = media_base_url
        self.contents = MediaContents(
            spec.seed,
            spec.media_min_bytes,
            spec.media_max_bytes,
            decodable=spec.decodable_media,
        )
        self._templates = generate.make_templates(spec.seed, spec.templates)
        self._counts: dict[Service, int] = {
            "vth": spec.vth_tasks,
            "chanjing": spec.chanjing_tasks,
            "cj_video": spec.chanjing_videos,
            "cj_avatar": spec.chanjing_avatars,
            "cj_ai": spec.ai_creations,
        }
        # Sequence numbers in list order; generated ones first, added ones get the next numbers.
        self._order = {service: list(range(n)) for service, n in self._counts.items()}
        self._next = dict(self._counts)
        self._removed: set[tuple[Service, int]] = set()
        self._overrides: dict[tuple[Service, int], dict[str, Any]] = {}
        self._raw: dict[tuple[Service, int], Any] = {}
        self._forced: set[tuple[Service, int]] = set()
        self._extra_paths: set[str] = set()
        # Every vth record embeds a template: build them once per change, not once per record.
        self._templates_built: tuple[str, list[dict[str, Any]]] | None = None

    # -- listing -------------------------------------------------------------------------

    def count(self, service: Service) -> int:
        """How many tasks the service lists now."""
        return len(self._order[service])

    def page(self, service: Service, page: int, size: int) -> list[Any]:
        """Page `page` (1-based) of `size` records; empty past the end."""
        return self._records(service, self._order[service][(page - 1) * size : page * size])

    def ai_list(self, creation_type: int) -> list[Any]:
        """The AI creations of one `type` (3 images, 4 videos), newest first.

        A record without a `type`, or that is no object at all, is listed with the images.
        """
        return [
            r
            for r in self.records("cj_ai")
            if (r.get("type", 3) if isinstance(r, dict) else 3) == creation_type
        ]

    def records(self, service: Service) -> list[Any]:
        """Every record of one list, newest first."""
        return self._records(service, self._order[service])

    def succeeded(self, service: Service) -> list[dict[str, Any]]:
        """The records of one list that have succeeded (a correct archiver keeps those)."""
        key, value = _SUCCEEDED[service]
        return [r for r in self.records(service) if isinstance(r, dict) and _is(r.get(key), value)]

    def vth_tasks(self) -> list[Any]:
        """Every video-task-history record, newest first."""
        return self._records("vth", self._order["vth"])

    def chanjing_tasks(self) -> list[Any]:
        """Every lip-sync record, newest first."""
        return self._records("chanjing", self._order["chanjing"])

    def succeeded_vth(self) -> list[dict[str, Any]]:
        """The video-task-history records a correct archiver archives (state 30)."""
        return [r for r in self.vth_tasks() if isinstance(r, dict) and r.get("state") == 30]

    def succeeded_chanjing(self) -> list[dict[str, Any]]:
        """The lip-sync records a correct archiver archives (status 20)."""
        return [r for r in self.chanjing_tasks() if isinstance(r, dict) and r.get("status") == 20]

    def templates(self) -> list[dict[str, Any]]:
        """Every video template, as a `videoTemp` object."""
        return [dict(t) for t in self._template_records()]

    # -- changes -------------------------------------------------------------------------

    def add_vth_task(self, **fields: Any) -> dict[str, Any]:
        """Prepend a new succeeded task; `fields` override generated ones. Returns the record."""
        return self._add("vth", fields)

    def add_chanjing_task(self, **fields: Any) -> dict[str, Any]:
        """Prepend a new succeeded lip-sync video; `fields` override generated ones."""
        return self._add("chanjing", fields)

    def add_task(self, service: Service, **fields: Any) -> dict[str, Any]:
        """Prepend a new succeeded record to any list; `fields` override generated ones."""
        return self._add(service, fields)

    def add_raw(self, service: Service, record: Any) -> None:
        """Prepend `record` verbatim: anything JSON can carry, even a number or a broken dict."""
        seq = self._new_seq(service)
        self._raw[(service, seq)] = copy.deepcopy(record)
        self._register_paths(record)

    def update(self, task: TaskRef, **fields: Any) -> dict[str, Any]:
        """Change fields of a listed task (`ABSENT` removes one). Returns the record."""
        key = self._find(task)
        self._overrides.setdefault(key, {}).update(copy.deepcopy(fields))
        self._register_paths(fields)
        record: dict[str, Any] = self._record(*key)
        return record

    def succeed(self, task: TaskRef) -> dict[str, Any]:
        """Let an unfinished or failed task succeed, with its media. Returns the record."""
        key = self._find(task)
        self._forced.add(key)
        record: dict[str, Any] = self._record(*key)
        return record

    def remove(self, task: TaskRef) -> None:
        """Take a task off the list; its media files are gone with it."""
        service, seq = key = self._find(task)
        self._order[service].remove(seq)
        self._removed.add(key)

    def replace_media(self, path: str) -> MediaFile:
        """Upload new content at `path` (or a URL): new bytes, ETag and Last-Modified."""
        return self.contents.replace(self._as_path(path))

    def set_template_version(self, template_id: int, role: str, version: int) -> None:
        """Publish a new file for a template's `thumb`, `covering` or `video`, with `?v=version`.

        The file at the unversioned path is replaced too: S3 ignores the query, so the new
        version is new content at the same key, and even an old `?v=` URL now serves it.
        """
        if role not in generate.TEMPLATE_ROLES:
            raise ValueError(f"role must be one of {sorted(generate.TEMPLATE_ROLES)}")
        template = self._template(template_id)
        template.versions[role] = version
        template.updated_at += 86_400
        self._templates_built = None
        self.contents.replace(template.path(role))

    def retitle_template(self, template_id: int, title: str) -> None:
        """Give a template a new title (in every task that uses it)."""
        template = self._template(template_id)
        template.title = title
        template.updated_at += 86_400
        self._templates_built = None

    # -- media ---------------------------------------------------------------------------

    def media_path(self, url: str) -> str:
        """The media path (decoded, no query) of a media URL; the key of every media lookup."""
        return unquote(urlsplit(url).path)

    def media_file(self, path: str) -> MediaFile | None:
        """The file served at `path`, or None when the media host answers 404."""
        if path in self._extra_paths or self._is_referenced(path):
            return self.contents.file(path)
        return None

    def media_bytes(self, path: str) -> bytes:
        """The current content at `path` (or a URL), whether or not a record points at it."""
        return self.contents.file(self._as_path(path)).data()

    def media_paths(self) -> Iterator[str]:
        """Every path the media host serves now (each once)."""
        seen: set[str] = set()
        for template in self._templates:
            seen.update(template.path(role) for role in generate.TEMPLATE_ROLES)
        for service in _URL_FIELDS:
            for record in self._records(service, self._order[service]):
                seen.update(self.media_path(url) for url in _record_urls(service, record) if url)
        seen.update(self._extra_paths)
        yield from sorted(p for p in seen if p.startswith("/media/"))

    def export_media(self, directory: str | Path) -> int:
        """Write every served file under `directory`, at its URL path. Returns the count."""
        root = Path(directory).resolve()
        written = 0
        for path in self.media_paths():
            target = (root / path.lstrip("/")).resolve()
            if not target.is_relative_to(root):
                continue  # a hand-made record's path must not escape the export folder
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as out:
                for chunk in self.contents.file(path).read():
                    out.write(chunk)
            written += 1
        return written

    # -- internals -----------------------------------------------------------------------

    def _template_records(self) -> list[dict[str, Any]]:
        base = self.media_base_url
        if self._templates_built is None or self._templates_built[0] != base:
            built = [generate.template_record(t, base) for t in self._templates]
            self._templates_built = (base, built)
        return self._templates_built[1]

    def _records(self, service: Service, seqs: list[int]) -> list[Any]:
        return [self._record(service, seq) for seq in seqs]

    def _record(self, service: Service, seq: int) -> Any:
        key = (service, seq)
        if key in self._raw:
            return copy.deepcopy(self._raw[key])
        spec, base, forced = self.spec, self.media_base_url, key in self._forced
        count = self._counts[service]
        record: dict[str, Any]
        if service == "vth":
            templates = self._template_records()
            record = generate.vth_record(
                spec.seed, seq, count, spec.succeeded_share, base, templates, forced
            )
        else:
            make = _GENERATORS[service]
            record = make(spec.seed, seq, count, spec.succeeded_share, base, forced)
        for name, value in self._overrides.get(key, {}).items():
            if value is ABSENT:
                record.pop(name, None)
            else:
                record[name] = copy.deepcopy(value)
        return record

    def _add(self, service: Service, fields: dict[str, Any]) -> dict[str, Any]:
        seq = self._new_seq(service)
        if fields:
            self._overrides[(service, seq)] = copy.deepcopy(fields)
            self._register_paths(fields)
        record: dict[str, Any] = self._record(service, seq)
        return record

    def _new_seq(self, service: Service) -> int:
        seq = self._next[service]
        self._next[service] += 1
        self._order[service].insert(0, seq)
        return seq

    def _live(self, service: Service, seq: int) -> bool:
        return 0 <= seq < self._next[service] and (service, seq) not in self._removed

    def _find(self, task: TaskRef) -> tuple[Service, int]:
        task_id = task.get("unique_id", task.get("id")) if isinstance(task, Mapping) else task
        if not isinstance(task_id, int | str):
            raise KeyError(f"not a task id: {task_id!r}")
        for service, seq in self._guesses(str(task_id)):
            if seq is None or not self._live(service, seq):
                continue
            if _record_id(service, self._record(service, seq)) == str(task_id):
                return service, seq
        # Raw records and changed ids cannot be found by arithmetic: look through the lists.
        for kind in _SERVICES:
            records = self._records(kind, self._order[kind])
            for candidate, record in zip(self._order[kind], records, strict=True):
                if _record_id(kind, record) == str(task_id):
                    return kind, candidate
        raise KeyError(f"no listed task has id {task_id!r}")

    def _guesses(self, task_id: str) -> Iterator[tuple[Service, int | None]]:
        """Where a task with this id would be, by the shape of the id."""
        if task_id.isascii() and task_id.isdigit():
            yield "vth", generate.vth_seq(int(task_id), self._counts["vth"])
        elif _UUID.fullmatch(task_id):
            yield "cj_ai", generate.chanjing_seq(task_id.replace("-", ""))
        elif _HEX32.fullmatch(task_id):
            seq = generate.chanjing_seq(task_id.removeprefix("C-"))
            services: tuple[Service, ...] = ("chanjing", "cj_video", "cj_avatar")
            yield from ((service, seq) for service in services)

    def _template(self, template_id: int) -> generate.TemplateState:
        for template in self._templates:
            if template.id == template_id:
                return template
        raise KeyError(f"no template has id {template_id!r}")

    def _is_referenced(self, path: str) -> bool:
        for template in self._templates:
            if any(path == template.path(role) for role in generate.TEMPLATE_ROLES):
                return True
        owner = self._owner(path)
        if owner is None:
            return False
        service, seq = owner
        if seq is None or not self._live(service, seq):
            return False
        record = self._record(service, seq)
        return any(self.media_path(url) == path for url in _record_urls(service, record))

    def _owner(self, path: str) -> tuple[Service, int | None] | None:
        """The list and sequence number of the record whose media `path` is, by its shape."""
        if match := _VTH_MEDIA.match(path):
            return "vth", generate.vth_seq(int(match[1]), self._counts["vth"])
        for pattern, service in _CHANJING_MEDIA:
            if match := pattern.match(path):
                return service, generate.chanjing_seq(match[1].replace("-", ""))
        return None

    def _register_paths(self, value: Any) -> None:
        # Tests put hand-made media URLs into records; the media host must then serve them.
        if isinstance(value, dict):
            for item in value.values():
                self._register_paths(item)
        elif isinstance(value, list):
            for item in value:
                self._register_paths(item)
        elif isinstance(value, str) and "://" in value:
            path = self.media_path(value)
            if path.startswith("/media/"):
                self._extra_paths.add(path)

    def _as_path(self, path_or_url: str) -> str:
        return self.media_path(path_or_url) if "://" in path_or_url else path_or_url


def _is(state: Any, succeeded: object) -> bool:
    """Whether `state` says `succeeded`: as itself, or a number as its decimal text."""
    if type(state) is type(succeeded):
        return bool(state == succeeded)
    return isinstance(state, str) and state.strip() == str(succeeded)
