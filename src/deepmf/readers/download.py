"""Downloading data zips: streamed, MD5-checked, extracted safely. Knows no dataset names."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Sequence
from pathlib import Path

from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

from deepmf.errors import DataError
from deepmf.files import replacing

CHUNK = 1 << 16


def _one_line(reason) -> str:
    return " ".join(str(reason).split())


def fetch(
    url: str,
    dest: Path,
    md5: str | None,
    *,
    opener=urllib.request.urlopen,
    progress: bool = True,
    places: Sequence[Path] = (),
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` to ``dest`` and check its MD5; return ``dest``.

    The bytes go to a temporary file next to ``dest``, renamed into place only when the
    checksum matches, so an interrupted or corrupt download leaves nothing behind. A
    Rich progress bar shows on a terminal unless ``progress=False``. Without a known
    ``md5`` nothing is downloaded: the data could not be verified.
    """
    dest = Path(dest)
    hint = f"; offline? put the files in one of: {', '.join(map(str, places or [dest.parent]))}"
    if not md5:
        raise DataError(f"no published checksum for {url}, not downloading it{hint}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.md5()
    try:
        with replacing(dest) as tmp:
            with open(tmp, "wb") as out:
                try:
                    response = opener(url, timeout=timeout)
                except TypeError:  # openers without a timeout argument
                    response = opener(url)
                with response:
                    _stream(response, out, digest, dest.name, progress)
            got = digest.hexdigest()
            if got != md5.lower():
                raise DataError(f"checksum mismatch for {url}: expected {md5}, got {got}")
    except DataError:
        raise
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        if isinstance(exc, urllib.error.HTTPError):
            reason = f"HTTP {exc.code} {exc.reason}"
        raise DataError(f"could not download {url}: {_one_line(reason)}{hint}") from None
    return dest


def _stream(response, out, digest, name: str, progress: bool) -> None:
    """Copy the response to ``out`` a chunk at a time, hashing it, with a progress bar on a
    terminal."""
    total = response.headers.get("Content-Length") if response.headers else None
    show = progress and sys.stderr.isatty()
    with Progress(*Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn(),
                  disable=not show, transient=True) as bar:
        task = bar.add_task(name, total=int(total) if total else None)
        while chunk := response.read(CHUNK):
            out.write(chunk)
            digest.update(chunk)
            bar.advance(task, len(chunk))


def safe_extract(archive: Path, target: Path) -> None:
    """Extract a zip into ``target``, refusing members that would land outside it."""
    root = target.resolve()
    try:
        with zipfile.ZipFile(archive) as zf:
            for member in zf.infolist():
                where = (root / member.filename).resolve()
                if member.filename.startswith(("/", "\\")) or not where.is_relative_to(root):
                    raise DataError(f"{archive}: unsafe path in zip: {member.filename!r}")
            zf.extractall(root)
    except zipfile.BadZipFile as exc:
        raise DataError(f"{archive}: not a valid zip file ({_one_line(exc)})") from None


def ensure_release(url: str, md5: str | None, cache_dir, folder: str, required: str, *,
                   places: Sequence[Path] = (), opener=urllib.request.urlopen,
                   progress: bool = True) -> Path:
    """Download the zip at ``url`` and unpack its top folder ``folder`` into ``cache_dir``.

    Nothing is fetched when ``cache_dir/folder/required`` already exists. Extraction goes to
    a temporary folder first and the zip must hold ``folder/required``, so a failure leaves
    no half-written data. Returns ``cache_dir/folder``.
    """
    cache_dir = Path(cache_dir)
    target = cache_dir / folder
    if (target / required).is_file():
        return target
    archive = cache_dir / f"{folder}.zip"
    fetch(url, archive, md5, opener=opener, progress=progress, places=list(places) or [cache_dir])
    staging = Path(tempfile.mkdtemp(prefix=f".{folder}.", dir=cache_dir))
    try:
        safe_extract(archive, staging)
        if not (staging / folder / required).is_file():
            raise DataError(f"{url}: zip has no {folder}/{required}")
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging / folder, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        archive.unlink(missing_ok=True)
    return target
