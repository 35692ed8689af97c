"""A benchmark's data: one stand-in dataset, its media on disk for nginx, and what runs on it.

Each workload has a name that is both its folder in the work area and the first part of its
media URLs (`http://127.0.0.1:<nginx>/<name>/media/...`), so one nginx serves every workload.
The bench process builds the same `Dataset` as the stand-in process (records are a pure
function of the spec), which gives it every media URL without asking the API: the peers get
exactly the files the archiver fetches.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from archiver.standin import Dataset, DatasetSpec
from archiver.standin.server import DEMO_VTH_TOKEN

TOKEN = DEMO_VTH_TOKEN
SOURCE = "faceswap"  # the source's name in the archiver config, and its folder


@dataclass
class Workload:
    """One dataset, exported for nginx, and the inputs of the commands that fetch it."""

    name: str
    spec: DatasetSpec
    work: Path  # this workload's own folder
    www: Path  # nginx's root, shared by all workloads
    nginx_url: str
    urls: list[str] = field(default_factory=list)
    total_bytes: int = 0
    archives: list[Path] = field(default_factory=list)  # made by `archiver run`, oldest first
    items: list[list[str]] = field(default_factory=list)  # each task's new URLs, listing order

    @property
    def media_base_url(self) -> str:
        return f"{self.nginx_url}/{self.name}"

    @property
    def spec_json(self) -> dict[str, Any]:
        return asdict(self.spec)

    def write_config(
        self, folder: Path, api_url: str, archive_dir: str = "archive", **settings: Any
    ) -> Path:
        """An archiver config in `folder`, archiving into `folder/archive`; returns its path.

        `settings` are top-level settings beyond the defaults.
        """
        folder.mkdir(parents=True, exist_ok=True)
        config = folder / "config.yaml"
        document = {
            **settings,
            "archive_dir": archive_dir,
            "sources": {
                SOURCE: {"type": "video_task_history", "base_url": api_url, "token": TOKEN}
            },
        }
        config.write_text(json.dumps(document, indent=2) + "\n")  # JSON is YAML
        return config

    def export(self) -> None:
        """Write every media file under nginx's root and note each URL the archiver fetches."""
        self.work.mkdir(parents=True, exist_ok=True)
        target = self.www / self.name
        if target.exists():
            shutil.rmtree(target)
        # Media paths (`/media/...`) come from URLs without our prefix; nginx finds
        # `/<name>/media/...` under `<www>/<name>/media/...` all the same.
        export_media(Dataset(self.spec), target)
        dataset = Dataset(self.spec, self.media_base_url)
        seen: dict[str, None] = {}
        for record in dataset.succeeded_vth():
            urls = [record[key] for key in ("origin", "covering") if record.get(key)]
            template = record.get("videoTemp")
            if isinstance(template, dict):
                urls += [
                    template[key] for key in ("thumb", "covering", "video") if template.get(key)
                ]
            self.items.append([url for url in urls if url not in seen])
            seen.update(dict.fromkeys(urls))
        self.urls = list(seen)
        self.total_bytes = sum(self.local_path(url).stat().st_size for url in self.urls)

    def local_path(self, url: str) -> Path:
        """Where nginx reads the file at `url`."""
        return self.www / unquote(urlsplit(url).path).lstrip("/")

    def relative_name(self, url: str) -> str:
        """The file's path below an output folder: its URL path, decoded."""
        return unquote(urlsplit(url).path).lstrip("/")

    def write_peer_inputs(self) -> None:
        """curl's config file and aria2c's input file; both write below their working folder."""
        curl_lines, aria_lines = [], []
        for url in self.urls:
            name = self.relative_name(url)
            curl_lines += [f"url = {_quoted(url)}", f"output = {_quoted(name)}"]
            aria_lines += [url, f"  out={name}"]
        self.curl_list.write_text("\n".join(curl_lines) + "\n", encoding="utf-8")
        self.aria2_list.write_text("\n".join(aria_lines) + "\n", encoding="utf-8")

    @property
    def curl_list(self) -> Path:
        return self.work / "curl.list"

    @property
    def aria2_list(self) -> Path:
        return self.work / "urls.txt"


def export_media(dataset: Dataset, target: Path) -> int:
    """`Dataset.export_media` with plain os calls: the same files, several times faster.

    Each folder is made once and nothing is resolved; at 100,000 files that saves minutes.
    """
    made: set[Path] = set()
    written = 0
    for path in dataset.media_paths():
        if ".." in path.split("/"):
            continue
        destination = target / path.lstrip("/")
        folder = destination.parent
        if folder not in made:
            folder.mkdir(parents=True, exist_ok=True)
            made.add(folder)
        with open(destination, "wb") as out:
            for chunk in dataset.contents.file(path).read():
                out.write(chunk)
        written += 1
    return written


def _quoted(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def clear(path: Path) -> None:
    """Remove a folder and everything in it, if it is there."""
    if path.exists():
        shutil.rmtree(path)


def fresh_folder(parent: Path, label: str) -> Path:
    """A new, empty folder `parent/<label>-<n>`.

    Every measurement writes into a folder of its own and nothing is deleted until the whole
    benchmark ends: on ext4 without a journal, new inodes skip those deleted in the last
    minutes, so a run after a deletion would measure the deletion.
    """
    parent.mkdir(parents=True, exist_ok=True)
    n = 1
    while (parent / f"{label}-{n}").exists():
        n += 1
    folder = parent / f"{label}-{n}"
    folder.mkdir()
    return folder
