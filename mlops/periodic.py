"""A background round on a period: the alert courier and the insight narrator are each one of these."""

from __future__ import annotations

import threading

from mlops.logs import get_logger

log = get_logger(__name__)


class Periodic:
    """A daemon thread that runs `round()` every `poll_seconds`, or at once when woken, until stopped. A round
    that raises is logged and the next one runs as planned: the thread never dies of one bad round."""

    thread_name = "skippy-periodic"

    def __init__(self, poll_seconds: float) -> None:
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def round(self) -> None:
        raise NotImplementedError

    def starting(self) -> None:
        """Runs once in the thread before the first round (slow imports belong here, not on a caller's path)."""

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=self.thread_name, daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None

    def _loop(self) -> None:
        self.starting()
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.round()
            except Exception:
                log.exception("background round failed", thread=self.thread_name)
            self._wake.wait(self.poll_seconds)
