"""The verified store: checksums (the registry's or a manifest's), verification remembered in memory,
downloads through an optional mirror into the cache, and the offline rule."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib
import importlib.util
import os
import sys
import time
from pathlib import Path

from utils import settings
from utils.data.registry import (
    _BUNDLED_IN,
    Dataset,
    DatasetUnavailable,
    RemoteFile,
    _dataset,
    _folder,
    offline,
)

# --------------------------------------------------------------------------------------------
# Checksums from a manifest (COURSE_DATA_CHECKSUMS)
# --------------------------------------------------------------------------------------------

# Manifest path -> ((size, mtime_ns), parsed entries): re-read only when the file changes.
_MANIFESTS: dict[str, tuple[tuple[int, int], dict[str, str]]] = {}


def _read_manifest(path: Path) -> dict[str, str]:
    """Parse a ``sha256sum``/``md5sum`` style manifest: ``<hex>  <name>`` per line.

    ``<name>`` is a file name (``mnist.npz``) or ``<dataset>/<file name>``; a leading ``*``
    (binary mode) and ``./`` are ignored, as are blank lines and lines starting with ``#``.
    64 hex digits are SHA-256, 32 are MD5. Returns name -> ``"sha256:<hex>"``/``"md5:<hex>"``.
    """
    entries: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        hexdigest, _, name = line.partition(" ")
        name = name.strip().lstrip("*").removeprefix("./")
        algorithm = {64: "sha256", 32: "md5"}.get(len(hexdigest))
        try:
            int(hexdigest, 16)
        except ValueError:
            algorithm = None
        if algorithm is None or not name:
            raise ValueError(
                f"{path}, line {number}: expected '<sha256 or md5 hex digest>  <file name>', got {raw!r}"
            )
        entries[name] = f"{algorithm}:{hexdigest.lower()}"
    return entries


def _manifest() -> tuple[Path, dict[str, str]] | None:
    """The manifest named by ``$COURSE_DATA_CHECKSUMS`` and its entries, or None when unset."""
    chosen = settings.data_checksums()
    if not chosen:
        return None
    path = Path(chosen).expanduser()
    try:
        st = path.stat()
        key = (st.st_size, st.st_mtime_ns)
        cached = _MANIFESTS.get(str(path))
        if cached is None or cached[0] != key:
            cached = (key, _read_manifest(path))
            _MANIFESTS[str(path)] = cached
    except OSError as error:
        raise ValueError(
            f"COURSE_DATA_CHECKSUMS is set to {chosen!r}, which cannot be read ({error.strerror or error}). "
            "Point it at a checksum manifest, or unset it to use the publishers' checksums."
        ) from error
    return path, cached[1]


def _expected_files(ds: Dataset) -> tuple[RemoteFile, ...]:
    """``ds.files`` with the checksums of ``$COURSE_DATA_CHECKSUMS`` where it lists a file.

    A listed file gets the manifest's checksum and no expected size (the manifest gives none:
    the checksum alone decides, so a partial or damaged file is still rejected). Files the
    manifest does not list keep the registry's checksum and size.
    """
    found = _manifest()
    if found is None:
        return ds.files
    _, entries = found
    files = []
    for rf in ds.files:
        checksum = entries.get(f"{ds.name}/{rf.filename}") or entries.get(rf.filename)
        files.append(rf if checksum is None else dataclasses.replace(rf, checksum=checksum, size=None))
    return tuple(files)


def _checksum_source(ds: Dataset, rf: RemoteFile) -> str:
    """Where the checksum ``rf`` is checked against comes from, for messages."""
    registry = {f.filename: f.checksum for f in ds.files}
    found = _manifest()
    if found is not None and registry.get(rf.filename) != rf.checksum:
        return f"the manifest {found[0]} (COURSE_DATA_CHECKSUMS)"
    return "the course's registry"


# --------------------------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------------------------

# (path, size, mtime_ns, inode, expected checksum) -> verified. A file that changes on disk gets a
# new key, so repeated checks of an unchanged file cost one stat() call.
_VERIFIED: dict[tuple[str, int, int, int, str], bool] = {}


def _digest(path: Path, algorithm: str) -> str:
    if algorithm == "md5":
        h = hashlib.md5(usedforsecurity=False)
    elif algorithm == "sha256":
        h = hashlib.sha256()
    else:
        raise ValueError(f"Unsupported checksum algorithm {algorithm!r} (use sha256 or md5).")
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _split_checksum(checksum: str) -> tuple[str, str]:
    algorithm, _, hexdigest = checksum.partition(":")
    if not hexdigest:
        raise ValueError(f"Checksum {checksum!r} must look like 'sha256:<hex>' or 'md5:<hex>'.")
    return algorithm.lower(), hexdigest.lower()


def _check_file(path: Path, rf: RemoteFile) -> str | None:
    """Return None if ``path`` holds exactly ``rf``'s bytes, else a short reason why not."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return "missing"
    if rf.size is not None and st.st_size != rf.size:
        return f"size {st.st_size:,} bytes, expected {rf.size:,}"
    key = (str(path), st.st_size, st.st_mtime_ns, st.st_ino, rf.checksum)
    if _VERIFIED.get(key):
        return None
    algorithm, expected = _split_checksum(rf.checksum)
    actual = _digest(path, algorithm)
    if actual != expected:
        return f"{algorithm} {actual}, expected {expected}"
    _VERIFIED[key] = True
    return None


def _remember_verified(path: Path, rf: RemoteFile) -> None:
    """Record that ``path`` (just renamed from a verified ``.part``) holds ``rf``'s bytes."""
    st = path.stat()
    _VERIFIED[(str(path), st.st_size, st.st_mtime_ns, st.st_ino, rf.checksum)] = True


def is_cached(name: str) -> bool:
    """Return True if the dataset can be used without the network right now.

    For a download dataset: all its files are in the cache and verified against their checksums
    (the registry's, or ``$COURSE_DATA_CHECKSUMS``'s where it lists a file). Results are
    remembered in memory by path, size and modification time, so repeated calls are cheap.
    Bundled datasets: True if the package that ships them is installed. Generated datasets:
    always True.
    """
    ds = _dataset(name)
    if ds.kind == "download":
        folder = _folder(ds)
        return all(_check_file(folder / rf.filename, rf) is None for rf in _expected_files(ds))
    if ds.kind == "bundled":
        package = _BUNDLED_IN.get(ds.name)
        return package is None or importlib.util.find_spec(package) is not None
    return True


# --------------------------------------------------------------------------------------------
# Downloading
# --------------------------------------------------------------------------------------------


def _candidate_urls(ds: Dataset, rf: RemoteFile) -> list[str]:
    urls = []
    mirror = settings.data_mirror()
    if mirror:
        if "://" not in mirror:  # a folder: a USB stick, a network share, a copy of data_dir()
            mirror = Path(mirror).expanduser().resolve().as_uri()
        base = mirror.rstrip("/")
        # A flat folder of files, or a copy of data_dir() (one sub-folder per dataset).
        urls += [f"{base}/{rf.filename}", f"{base}/{ds.name}/{rf.filename}"]
    urls.append(rf.url)
    return urls


class _Progress:
    """A one-line text progress bar on stdout (``\\r`` redraws it in terminals and notebooks)."""

    def __init__(self, label: str, total: int | None, enabled: bool) -> None:
        self.label, self.total, self.enabled = label, total, enabled
        self.last = 0.0

    def update(self, done: int, final: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not final and now - self.last < 0.2):
            return
        self.last = now
        if self.total:
            frac = min(done / self.total, 1.0)
            bar = "#" * int(frac * 30)
            line = f"\r{self.label} [{bar:<30}] {frac:6.1%} {done / 1e6:.1f}/{self.total / 1e6:.1f} MB"
        else:
            line = f"\r{self.label} {done / 1e6:.1f} MB"
        sys.stdout.write(line + ("\n" if final else ""))
        sys.stdout.flush()


def _download(url: str, part: Path, rf: RemoteFile, timeout: float, progress: bool) -> None:
    """Stream ``url`` into ``part``. Raises OSError (URLError, timeouts, HTTP errors) on failure."""
    import urllib.request

    request = urllib.request.Request(url, headers={"User-Agent": "dl-course-data/1.0"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        length = response.headers.get("Content-Length")
        total = rf.size or (int(length) if length and length.isdigit() else None)
        bar = _Progress(f"Downloading {rf.filename}", total, progress)
        done = 0
        with open(part, "wb") as out:
            while True:
                block = response.read(1 << 16)
                if not block:
                    break
                done += len(block)
                if rf.size is not None and done > rf.size:
                    raise OSError(f"{url} sent more than the expected {rf.size:,} bytes")
                out.write(block)
                bar.update(done)
        bar.update(done, final=True)


def _remove_stale_parts(folder: Path, filename: str, older_than: float = 600.0) -> None:
    """Delete ``filename.*.part`` files left behind by an interrupted download."""
    now = time.time()
    for stale in folder.glob(f"{filename}.*.part"):
        with contextlib.suppress(OSError):
            if now - stale.stat().st_mtime > older_than:
                stale.unlink()


def _reason_text(error: BaseException) -> str:
    import urllib.error

    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError) and isinstance(error.reason, FileNotFoundError):
        return "no such file in the mirror folder"  # a file:// mirror
    if isinstance(error, urllib.error.URLError):
        return f"network unreachable ({error.reason})"
    if isinstance(error, TimeoutError):
        return "no answer within the time limit (network unreachable or too slow)"
    return str(error) or type(error).__name__


def fetch(name: str, *, force: bool = False, progress: bool = True, timeout: float = 10.0) -> dict[str, Path]:
    """Make sure a download dataset is in the cache, verified; return its paths by filename.

    A file already cached and verified is used as is: no network. A cached file that is partial
    or corrupt (wrong size or checksum) is deleted and downloaded again. Each download goes to a
    ``.part`` file, is verified, then renamed into place, so a half-written file is never used.
    With ``$COURSE_DATA_MIRROR`` set (a base URL), ``<mirror>/<filename>`` and
    ``<mirror>/<dataset>/<filename>`` are tried before the official URL (a local folder works
    too: a path or a ``file://`` URL). With ``$COURSE_DATA_CHECKSUMS`` set (a manifest, see
    :func:`_read_manifest`), the files it lists are checked against its checksums instead of the
    registry's; everything else is checked as before. ``force=True``
    downloads again even when the cache is good (the old copy stays until the new one verifies).
    ``timeout`` (seconds) bounds each connection attempt and each read, so a missing network
    fails fast. Bundled and generated datasets need no download: their result is ``{}``.

    Raises :class:`DatasetUnavailable` when offline (``$COURSE_OFFLINE``) and not cached, when
    the network is unreachable, or when the downloaded bytes do not match the checksum (the bad
    file is deleted; the message gives the expected and actual checksums).
    """
    ds = _dataset(name)
    if ds.kind != "download":
        return {}
    folder = _folder(ds)
    paths: dict[str, Path] = {}
    for rf in _expected_files(ds):
        path = folder / rf.filename
        problem = _check_file(path, rf)
        if problem is None and not force:
            paths[rf.filename] = path
            continue
        note = ""
        if problem not in (None, "missing"):
            # Never used: a partial or damaged file goes, and is fetched again below.
            with contextlib.suppress(OSError):
                path.unlink()
            note = f" (the cached {rf.filename} was damaged: {problem}; it has been deleted)"
        if offline():
            if problem is None:  # force=True offline: keep using the good copy
                paths[rf.filename] = path
                continue
            raise DatasetUnavailable(
                ds.name,
                f"the course is offline (COURSE_OFFLINE is set) and {rf.filename} is not in the cache{note}",
                ds.offline_alternative,
            )
        paths[rf.filename] = _download_verified(ds, rf, path, timeout, progress, note)
    return paths


def _download_verified(
    ds: Dataset, rf: RemoteFile, path: Path, timeout: float, progress: bool, note: str
) -> Path:
    import http.client

    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_parts(path.parent, rf.filename)
    part = path.with_name(f"{rf.filename}.{os.getpid()}.part")
    failures: list[str] = []
    mismatch = False
    for url in _candidate_urls(ds, rf):
        try:
            _download(url, part, rf, timeout, progress)
            problem = _check_file(part, rf)
            if problem is None:
                os.replace(part, path)
                _remember_verified(path, rf)
                return path
            mismatch = True
            failures.append(f"{url}: sent the wrong bytes ({problem}, per {_checksum_source(ds, rf)})")
        except (OSError, ValueError, http.client.HTTPException) as error:
            # URLError, HTTPError and timeouts are OSErrors; a cut-off response is an HTTPException.
            failures.append(f"{url}: {_reason_text(error)}")
        finally:
            with contextlib.suppress(OSError):
                part.unlink()
    what = "the download did not match its checksum" if mismatch else "it could not be downloaded"
    raise DatasetUnavailable(
        ds.name,
        f"{rf.filename} is not in the cache{note} and {what} ({'; '.join(failures)})",
        ds.offline_alternative,
    )
