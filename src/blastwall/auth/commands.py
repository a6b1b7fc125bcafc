"""`blastwall token ...`: issue, list and revoke API tokens."""

from __future__ import annotations

from typing import Annotated

import typer

from blastwall.auth import service
from blastwall.auth.roles import Role
from blastwall.console import audit, operator, print_json, print_table, session_scope

app = typer.Typer(help="API tokens: create, list, revoke.", no_args_is_help=True)


@app.command("create")
def create(
    name: Annotated[str, typer.Option(help="Who or what uses the token.")],
    role: Annotated[Role, typer.Option(help="What the token may do.")],
    replace: Annotated[
        bool, typer.Option(help="Rotate: revoke the principal's active tokens first.")
    ] = False,
    add: Annotated[
        bool,
        typer.Option(help="A further token of an existing principal."),
    ] = False,
) -> None:
    """Create a token and print it once; only its hash is kept. The name is the principal
    the token acts for: a name that has an active token is refused unless --replace or
    --add."""
    with session_scope() as session:
        row, secret = service.create_token(
            session, name=name, role=role, created_by=operator().name, replace=replace, add=add
        )
        audit(session, command="token create", object=f"token:{row.id}")
    typer.echo(secret)
    typer.echo(
        f"token {row.id} '{name}' ({role.value}); store it now, it is not shown again", err=True
    )


@app.command("list")
def list_(
    all: Annotated[bool, typer.Option("--all", help="Include revoked tokens.")] = False,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List tokens (never their secrets)."""
    with session_scope() as session:
        rows, _ = service.list_tokens(session, include_revoked=all, limit=10_000)
    if json:
        print_json(
            [
                {
                    "id": r.id,
                    "name": r.name,
                    "role": r.role,
                    "prefix": r.prefix,
                    "created_at": r.created_at,
                    "revoked_at": r.revoked_at,
                }
                for r in rows
            ]
        )
        return
    print_table(
        ["id", "name", "role", "prefix", "created", "revoked"],
        [(r.id, r.name, r.role, r.prefix + "…", r.created_at, r.revoked_at) for r in rows],
    )


@app.command("revoke")
def revoke(token_id: Annotated[int, typer.Argument(help="The token's id.")]) -> None:
    """Revoke a token: it stops working at once."""
    with session_scope() as session:
        row = service.revoke_token(session, token_id=token_id)
        audit(session, command="token revoke", object=f"token:{row.id}")
    typer.echo(f"token {row.id} '{row.name}' revoked")
