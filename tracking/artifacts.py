"""Reading back a small artifact a run logged (e.g. a retrain's `test_equity.csv`), as text.

A run's artifacts never change once it has ended, so what was read is kept in memory by (store, run id,
path): a dashboard that refreshes every few seconds asks MLflow once per run, not once per refresh. A failed
read is remembered for a few minutes (a run logged without the file, or a store that is down: either way,
asking again at every refresh would cost each page view a round trip that fails again)."""

from __future__ import annotations

import tempfile
import threading
import time
from collections import OrderedDict
from pathlib import Path

from mlops.errors import InvalidRequestError, NotFoundError, SkippyError
from mlops.settings import Settings
from tracking.client import get_client

CACHED = 32  # runs' artifacts kept (a few KB each)
MAX_BYTES = 5_000_000  # a "small" artifact: anything larger is not read into a page
RETRY_AFTER = 300.0  # seconds a failed read is answered from memory

_cache: OrderedDict[tuple[str, str, str], str] = OrderedDict()
_failed: dict[tuple[str, str, str], tuple[float, SkippyError]] = {}
_lock = threading.Lock()


def artifact_text(settings: Settings, run_id: str, path: str) -> str:
    """The text of artifact `path` of run `run_id`: NotFoundError when the run or the file is missing."""
    key = (settings.tracking_uri, run_id, path)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
        failed = _failed.get(key)
        if failed is not None and time.monotonic() - failed[0] < RETRY_AFTER:
            raise failed[1].with_traceback(None)
    try:
        text = _download(settings, run_id, path)
    except SkippyError as exc:
        with _lock:
            if len(_failed) >= CACHED:
                _failed.clear()
            _failed[key] = (time.monotonic(), exc)
        raise
    with _lock:
        _failed.pop(key, None)
        _cache[key] = text
        while len(_cache) > CACHED:
            _cache.popitem(last=False)
    return text


def _download(settings: Settings, run_id: str, path: str) -> str:
    from mlflow.exceptions import MlflowException

    client = get_client(settings)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = Path(client.download_artifacts(run_id, path, tmp))
        except (MlflowException, OSError) as exc:
            raise NotFoundError(f"MLflow run {run_id} has no artifact {path!r}: {str(exc)[:300]}") from exc
        if not local.is_file():
            raise NotFoundError(f"artifact {path!r} of MLflow run {run_id} is a folder, not a file")
        size = local.stat().st_size
        if size > MAX_BYTES:
            raise InvalidRequestError(f"artifact {path!r} of MLflow run {run_id} is {size} bytes (at most {MAX_BYTES})")
        return local.read_text()


def clear_cache() -> None:
    with _lock:
        _cache.clear()
        _failed.clear()
