"""The pages, one module each. A page module defines:

- `PATH` (under /mlops), `TITLE` (the navigation label), `ROLE` (the least role that sees it);
- `layout(ctx: PageContext) -> Component`: the page's components, rendered for the logged-in user (a viewer
  gets no controls at all, not disabled ones);
- `register(app: Dash, settings: Settings) -> None`: its callbacks (and any Flask route it serves). Every
  callback is thin: it calls service functions, and one that acts asks `dashboard.auth.require(role)` first.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType

from mlops.auth import Principal
from mlops.settings import Settings

# In navigation order; the first is the landing page.
PAGE_MODULES: tuple[str, ...] = (
    "overview",
    "performance",
    "drift",
    "sweeps",
    "importance",
    "runs",
    "alerts",
    "controls",
)


@dataclass(frozen=True)
class PageContext:
    settings: Settings
    who: Principal
    mlflow_ui: str  # base URL of the MLflow UI, for links to runs and model versions
    query: dict[str, str] = field(default_factory=dict)  # the URL's query string (e.g. ?sweep=3)


def pages() -> list[ModuleType]:
    return [importlib.import_module(f"dashboard.pages.{name}") for name in PAGE_MODULES]
