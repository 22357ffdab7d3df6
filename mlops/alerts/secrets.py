"""Channel URLs and keys are secrets: a Slack webhook's path, a PagerDuty routing key, an SMTP password, a
generic webhook's token, an apprise URL's host (`tgram://BOT_TOKEN/chat`, `discord://ID/TOKEN`) all let
whoever reads them post as us. So a target is shown only as `mask_url` leaves it, and every free text that
may quote one (an exception from a client library, an HTTP answer, apprise's logs) goes through a
`Redactor` built from the configured secrets before it is stored, logged or shown."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

MASK = "***"
# Pieces shorter than this are not searched for in free text: "ab" would blank half of every message.
# Full secret values are always searched for, whatever their length.
MIN_PIECE = 4
_SEPARATORS = re.compile(r"[/:@?&=#;,]+")


def mask_url(url: str, *, keep_host: bool = True) -> str:
    """`scheme://host[:port]/***`: no user, password, path, query or fragment; with `keep_host=False` the
    host goes too (`tgram://***`: for apprise URLs, whose "host" is often a token)."""
    try:
        parts = urlsplit(url.strip())
        scheme, host, port = parts.scheme, parts.hostname, parts.port
    except ValueError:
        return MASK
    if not scheme:
        return MASK
    if not keep_host or not host:
        return f"{scheme}://{MASK}"
    shown = f"[{host}]" if ":" in host else host
    if port is not None:
        shown += f":{port}"
    userinfo = f"{MASK}@" if "@" in parts.netloc else ""
    rest = f"/{MASK}" if (parts.path not in ("", "/") or parts.query or parts.fragment) else ""
    return f"{scheme}://{userinfo}{shown}{rest}"


def secret_pieces(secret: str, *, public_host: bool) -> set[str]:
    """What of `secret` must never appear in a text: the whole value, and each part of it between URL
    separators (a path segment, a password, a query value), plain and percent-decoded. The host (and the
    scheme) stays out when `public_host`: it is shown by `mask_url` anyway."""
    pieces = {secret, unquote(secret)}
    public: set[str] = set()
    try:
        parts = urlsplit(secret)
        public.add(parts.scheme)
        if public_host and parts.hostname:
            public.add(parts.hostname)
            if parts.port:
                public.add(str(parts.port))
    except ValueError:
        pass
    for piece in _SEPARATORS.split(secret):
        for form in (piece, unquote(piece)):
            if len(form) >= MIN_PIECE and form not in public and form.lower() not in ("http", "https"):
                pieces.add(form)
    return {p for p in pieces if p}


class Redactor:
    """Replaces every configured secret (and each piece of it) in a text with `***`. Longest first, so that a
    whole URL is masked before any part of it."""

    def __init__(self, secrets: Iterable[tuple[str, bool]]) -> None:
        pieces: set[str] = set()
        for secret, public_host in secrets:
            if secret:
                pieces |= secret_pieces(secret, public_host=public_host)
        ordered = sorted(pieces, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(p) for p in ordered)) if ordered else None

    def __call__(self, text: str) -> str:
        return self._pattern.sub(MASK, text) if self._pattern is not None else text
