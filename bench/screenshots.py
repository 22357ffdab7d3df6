"""Screenshots of every dashboard page at 1440×900, as admin, on the benchmark's big store (bench/dashboard_store.py:
1,000 model runs, 100 drift checks, 20 sweeps; built on first use, then reused) or on any SKIPPY_HOME given with
`--home` (keys from its bench-keys.json, or `--admin-key`/`--viewer-key`). Each page is shot once it is
complete (the benchmark's readiness test: no request in flight, no loading marker, every graph drawn):
`<page>.png` (the viewport, what a person sees first) and, with `--full-page`, `<page>-full.png`; also the
benchmark's two item views, `sweeps-the-largest-sweep.png` (its parallel coordinates and trials) and
`drift-the-oldest-check.png`. Then a viewer's landing page, `viewer-<page>.png`: the navigation without the
operator's and admin's pages. Prints the paths.

    uv run python bench/screenshots.py --out /tmp/skippy-screens [--home DIR] [--full-page]

The PNGs are not committed (they change with every page).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# Run as a script, this folder is sys.path[0] and bench/drift.py would shadow the `drift` package.
sys.path[:] = [p for p in sys.path if p not in ("", str(HERE))]
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

from bench.dashboard import VIEWPORT, install_tracking, launch, page_views, wait_complete  # noqa: E402
from bench.dashboard_store import DEFAULT_HOME, KEYS, bench_settings, login, open_store, serve  # noqa: E402


def shot_name(label: str, path: str) -> str:
    """A page's file name is its path (`drift`); an item view's its label (`sweeps-the-largest-sweep`)."""
    if "?" not in path:
        return path.strip("/").replace("/", "-") or "home"
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def keys_for(args: argparse.Namespace) -> tuple[Path, dict[str, str]]:
    """The store's folder and its admin and viewer keys; the default bench store is built when missing."""
    home: Path = args.home.resolve()
    if args.admin_key:
        return home, {"admin": args.admin_key, "viewer": args.viewer_key or ""}
    if (home / KEYS).exists():
        return home, json.loads((home / KEYS).read_text())
    if home == DEFAULT_HOME.resolve():
        store = open_store(home)
        return store.home, store.keys
    raise SystemExit(f"{home} has no {KEYS} (not a bench store): pass --admin-key (and --viewer-key) of that store")


def shoot(
    browser: Any, base_url: str, key: str, views: dict[str, str], out: Path, full_page: bool, prefix: str = ""
) -> list[Path]:
    """Log in with `key`, then shoot each view (label → path) once it is complete."""
    context = browser.new_context(viewport=VIEWPORT)
    install_tracking(context)
    page = context.new_page()
    page.set_default_timeout(60_000)
    saved = []
    try:
        login(page, base_url, key, next(iter(views.values())))
        for label, path in views.items():
            page.goto(f"{base_url}/mlops{path}", wait_until="commit")
            wait_complete(page)
            target = out / f"{prefix}{shot_name(label, path)}.png"
            page.screenshot(path=str(target))
            saved.append(target)
            if full_page:
                target = out / f"{prefix}{shot_name(label, path)}-full.png"
                page.screenshot(path=str(target), full_page=True)
                saved.append(target)
    finally:
        context.close()
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="Folder for the PNGs (created if missing)")
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME, help=f"The store (default: {DEFAULT_HOME})")
    parser.add_argument("--admin-key", default=None, help="An admin key of --home (default: its bench-keys.json)")
    parser.add_argument("--viewer-key", default=None, help="A viewer key of --home, for the viewer's shot")
    parser.add_argument("--full-page", action="store_true", help="Also shoot each whole page, not just 1440×900")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    from dashboard.pages import pages

    home, keys = keys_for(args)
    args.out.mkdir(parents=True, exist_ok=True)
    modules = pages()
    views = {label: paths["shot"] for label, paths in page_views(modules, {"shot": bench_settings(home)}).items()}
    landing = {m.TITLE: m.PATH for m in modules if m.ROLE == "viewer"}
    viewer = dict(list(landing.items())[:1])
    with serve(home) as url, sync_playwright() as playwright:
        browser = launch(playwright)
        saved = shoot(browser, url, keys["admin"], views, args.out, args.full_page)
        if keys.get("viewer") and viewer:
            saved += shoot(browser, url, keys["viewer"], viewer, args.out, False, prefix="viewer-")
        browser.close()
    for target in saved:
        print(target)


if __name__ == "__main__":
    main()
