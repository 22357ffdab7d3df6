"""`skippy auth ...`: API keys, the audit trail, and model encryption keys."""

from __future__ import annotations

from datetime import datetime

import typer

from mlops.cli.common import JSON_OPTION, cli_actor, ready_settings
from mlops.cli.output import console, emit, fmt, print_json, table, user_errors

app = typer.Typer(help="API keys, the audit trail, model encryption keys.", no_args_is_help=True, rich_markup_mode=None)


@app.command("create-key")
def create_key_command(
    name: str = typer.Option(..., "--name", help="A name for the key (who or what uses it)"),
    role: str = typer.Option("viewer", "--role", help="viewer (read), operator (+ retrain, sweep...), admin"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create an API key and print it once: only its hash is stored."""
    from mlops.auth import create_key

    with user_errors(as_json):
        settings = ready_settings()
        created = create_key(settings, name=name, role=role, actor=cli_actor())
    if as_json:
        print_json({"key": created.key, "name": name, "role": created.record.role, "prefix": created.record.prefix})
        return
    console.print(f"API key {name!r} ({created.record.role}); shown once, store it now:", highlight=False)
    console.print(created.key, highlight=False, soft_wrap=True)
    api = f"http://{settings.api_host}:{settings.api_port}"
    console.print(
        f"use it as: curl -H 'Authorization: Bearer <key>' {api}/api/mlops/model-runs, or log in to {api}/mlops",
        highlight=False,
    )


@app.command("keys")
def keys_command(
    include_revoked: bool = typer.Option(False, "--all", help="Include revoked keys"), as_json: bool = JSON_OPTION
) -> None:
    """List API keys (names, roles, prefixes; never the keys)."""
    from mlops.auth import list_keys

    with user_errors(as_json):
        rows = list_keys(ready_settings(), include_revoked)
    emit(
        as_json,
        rows,
        lambda: table(
            "API keys",
            ["name", "role", "prefix", "created", "by", "last used", "revoked"],
            [[k.name, k.role, k.prefix + "…", k.created_at, k.created_by, k.last_used_at, k.revoked_at] for k in rows],
        ),
    )


@app.command("revoke")
def revoke_command(name: str = typer.Argument(..., help="Key name"), as_json: bool = JSON_OPTION) -> None:
    """Revoke an API key: requests with it get 401 from then on."""
    from mlops.auth import revoke_key

    with user_errors(as_json):
        settings = ready_settings()
        record = revoke_key(settings, name, actor=cli_actor())
    emit(as_json, record, lambda: console.print(f"revoked {record.name} ({record.role})", highlight=False))


@app.command("audit")
def audit_command(
    actor: str | None = typer.Option(None, help="Only this actor (api:<key name> or cli:<user>)"),
    action: str | None = typer.Option(None, help="Only actions containing this text, e.g. retrain"),
    since: datetime | None = typer.Option(None, help="Only rows at or after this time (UTC)"),
    limit: int = typer.Option(50, min=1, max=10_000),
    as_json: bool = JSON_OPTION,
) -> None:
    """The audit trail: every mutating API call and CLI command, newest first."""
    from mlops.audit import list_audit

    with user_errors(as_json):
        rows = list_audit(ready_settings(), actor=actor, action=action, since=since, limit=limit)
    emit(
        as_json,
        rows,
        lambda: table(
            "Audit log",
            ["time", "actor", "action", "status", "parameters"],
            [
                [r.created_at, r.actor, r.action, fmt(r.status_code), str(r.parameters.get("body", r.parameters))[:80]]
                for r in rows
            ],
        ),
    )


@app.command("model-key")
def model_key_command() -> None:
    """Print a new Fernet key for SKIPPY_MODEL_KEY (model weights encrypted at rest)."""
    from tracking.crypto import generate_key

    console.print(generate_key(), highlight=False)
