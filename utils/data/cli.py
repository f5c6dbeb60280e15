"""What is available here and now, and the command line: ``python -m utils.data status | fetch``."""

from __future__ import annotations

from typing import Any

from utils import settings
from utils.data.registry import REGISTRY, DatasetUnavailable, _dataset, _folder, _resolve_data_dir, offline
from utils.data.store import _manifest, fetch, is_cached

# --------------------------------------------------------------------------------------------
# Status, and the command line
# --------------------------------------------------------------------------------------------


def _human_size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def status() -> list[dict[str, Any]]:
    """Return one row per registry entry, for a table of what can be used here and now.

    Keys: name, title, kind, available (usable without the network right now: a verified cached
    download, an installed package's data, or generated data; ``cached`` is the same value under
    the name :func:`is_cached` uses), size (text) and size_bytes (download size), licence,
    offline_alternative.
    """
    rows = []
    for ds in REGISTRY.values():
        available = is_cached(ds.name)
        rows.append(
            {
                "name": ds.name,
                "title": ds.title,
                "kind": ds.kind,
                "available": available,
                "cached": available,
                "size": _human_size(ds.size_bytes),
                "size_bytes": ds.size_bytes,
                "licence": ds.licence,
                "offline_alternative": ds.offline_alternative,
            }
        )
    return rows


def _status_table() -> str:
    rows = status()
    header = ("name", "kind", "available", "size", "offline stand-in", "title")
    lines = [
        (
            r["name"],
            r["kind"],
            "yes" if r["available"] else "no",
            r["size"],
            r["offline_alternative"] or "-",
            r["title"],
        )
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*header).rstrip(), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*line).rstrip() for line in lines]
    mode = "offline (COURSE_OFFLINE is set)" if offline() else "online if reachable"
    out.append(f"\nData cache: {_resolve_data_dir()}   mode: {mode}")
    found = _manifest()
    if found is not None:
        out.append(f"Checksums: {found[0]} (COURSE_DATA_CHECKSUMS) for the {len(found[1])} file(s) it lists")
    mirror = settings.data_mirror()
    if mirror:
        out.append(f"Mirror: {mirror} (COURSE_DATA_MIRROR), tried before the official addresses")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """The command line: ``python -m utils.data status`` or ``... fetch NAME [NAME ...] | --all``.

    Returns the exit code: 0 when everything asked for is cached and verified, 1 otherwise.
    """
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m utils.data",
        description="The course's datasets: see what is available, fetch downloads into the "
        "cache. For a room without internet: fetch --all into COURSE_DATA_DIR, copy the folder.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("status", help="show every dataset and whether it is usable here")
    fetch_cmd = commands.add_parser("fetch", help="download and verify datasets")
    fetch_cmd.add_argument("names", nargs="*", help="dataset names (see status)")
    fetch_cmd.add_argument("--all", action="store_true", help="every download dataset")
    fetch_cmd.add_argument("--force", action="store_true", help="download again even if cached")
    fetch_cmd.add_argument("--timeout", type=float, default=10.0, help="seconds per attempt")
    args = parser.parse_args(argv)

    if args.command == "status":
        try:
            print(_status_table())
        except ValueError as error:  # an unreadable COURSE_DATA_CHECKSUMS manifest
            print(f"FAILED  {error}")
            return 1
        return 0
    names = [d.name for d in REGISTRY.values() if d.kind == "download"] if args.all else args.names
    if not names:
        parser.error("name at least one dataset, or use --all")
    failed = 0
    for name in names:
        try:
            ds = _dataset(name)
            if ds.kind != "download":
                print(f"ok      {ds.name}: {ds.kind}, nothing to download")
                continue
            paths = fetch(ds.name, force=args.force, timeout=args.timeout)
            size = sum(p.stat().st_size for p in paths.values())
            print(f"ok      {ds.name}: {len(paths)} file(s), {_human_size(size)}, verified, in {_folder(ds)}")
        except (DatasetUnavailable, ValueError) as error:
            failed += 1
            print(f"FAILED  {name}: {error}")
    if args.all and not failed:
        print(
            f"\nEverything is in {_resolve_data_dir()}. For a machine without internet, copy that "
            "folder to the same place there, or anywhere and set COURSE_DATA_DIR to it."
        )
    return 1 if failed else 0
