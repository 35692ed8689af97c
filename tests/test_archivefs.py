"""The archive's one atomic writer and its link-refusing folder opener, on real files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from archiver.errors import ArchivePathError
from archiver.store.archivefs import ItemFolders, archive_folder, atomic_file


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    with archive_folder(tmp_path, "a/b") as folder:
        with atomic_file(folder, "f.txt", durable=True) as out:
            out.write(b"first")
        with pytest.raises(RuntimeError), atomic_file(folder, "f.txt", durable=False) as out:
            out.write(b"half of the second")
            raise RuntimeError("stopped")
    assert (tmp_path / "a" / "b" / "f.txt").read_bytes() == b"first"
    assert [p.name for p in (tmp_path / "a" / "b").iterdir()] == ["f.txt"]


def test_a_link_at_a_temporary_like_name_is_never_written_through(tmp_path: Path) -> None:
    # A name planted in advance (a link, a file) cannot block or redirect the next write.
    with archive_folder(tmp_path, "") as folder:
        for _ in range(3):
            (tmp_path / ".f.txt.tmp").symlink_to(tmp_path / "elsewhere")
            with atomic_file(folder, "f.txt", durable=False) as out:
                out.write(b"data")
            (tmp_path / ".f.txt.tmp").unlink()
    assert not (tmp_path / "elsewhere").exists()
    assert (tmp_path / "f.txt").read_bytes() == b"data"


@pytest.mark.parametrize("planted", ["link", "file"])
def test_a_folder_in_the_way_is_named(tmp_path: Path, planted: str) -> None:
    (tmp_path / "src" / "2025").mkdir(parents=True)
    spot = tmp_path / "src" / "2025" / "09"
    if planted == "link":
        spot.symlink_to(tmp_path, target_is_directory=True)
        said = f"{spot}: a symbolic link inside the archive; not followed"
    else:
        spot.write_text("x")
        said = f"{spot}: not a folder"
    folders = ItemFolders(tmp_path)
    try:
        with pytest.raises(ArchivePathError) as caught:
            folders.open("src/2025/09/141")
        assert str(caught.value) == said
        folder, made = folders.open("src/2025/10/142")
        os.close(folder.fd)
        assert made and (tmp_path / "src" / "2025" / "10" / "142").is_dir()
        folder, made = folders.open("src/2025/10/142")
        os.close(folder.fd)
        assert not made
    finally:
        folders.close()
    assert not (tmp_path / "141").exists()
