"""Encryption at rest of model parameters: Fernet (AES-128-CBC + HMAC-SHA256) from `cryptography`.

SKIPPY_MODEL_KEY holds one Fernet key, or several separated by commas for rotation: the first
encrypts, every one of them decrypts (MultiFernet)."""

from __future__ import annotations

from typing import Any

from mlops.errors import ConfigurationError, ModelKeyError


def generate_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def _fernet(keys: str) -> Any:
    from cryptography.fernet import Fernet, MultiFernet

    parts = [k.strip() for k in keys.split(",") if k.strip()]
    if not parts:
        raise ConfigurationError("SKIPPY_MODEL_KEY is empty")
    try:
        return MultiFernet([Fernet(k.encode()) for k in parts])
    except (ValueError, TypeError):
        raise ConfigurationError(
            "SKIPPY_MODEL_KEY must be a Fernet key (32 url-safe base64-encoded bytes), or several separated by "
            "commas; `skippy auth model-key` prints a new one"
        ) from None


def check_key(keys: str) -> None:
    _fernet(keys)


def encrypt(data: bytes, keys: str) -> bytes:
    return bytes(_fernet(keys).encrypt(data))


def decrypt(token: bytes, keys: str | None, what: str) -> bytes:
    from cryptography.fernet import InvalidToken

    if not keys:
        raise ModelKeyError(f"{what} is encrypted: set SKIPPY_MODEL_KEY to the key it was written with to load it")
    try:
        return bytes(_fernet(keys).decrypt(token))
    except InvalidToken:
        raise ModelKeyError(f"{what} is encrypted with another key: SKIPPY_MODEL_KEY does not decrypt it") from None
