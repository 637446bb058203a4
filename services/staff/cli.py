"""`sistercities staff ...`: staff accounts from the command line, in process against the
staff database. The first admin is made here; every change is on record as the login name
at the command line (``cli:<user>``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

ROLES = click.Choice(["editor", "admin"])


def _in_transaction(change: Callable[[Any], Any]) -> Any:
    """Run ``change(session)`` in one transaction as the user at the command line; turn a
    refusal into the command's error."""
    from services.staff.config import load_settings
    from shared.actor import acting_as, cli_actor
    from shared.db import make_engine, make_session_factory, session_scope
    from shared.errors import ServiceError

    sessions = make_session_factory(make_engine(load_settings().database_url))
    try:
        with acting_as(cli_actor()), session_scope(sessions) as session:
            return change(session)
    except ServiceError as error:
        raise click.ClickException(error.message) from None


def _describe(member: dict) -> str:
    flags = [member["role"]]
    if member["has_password"]:
        flags.append("password")
    if member["disabled"]:
        flags.append("disabled")
    return f"{member['id']}: {member['name']} <{member['email']}> ({', '.join(flags)})"


@click.group(name="staff")
def staff_cli() -> None:
    """Staff accounts: who may sign in to the workspace, and as what."""


@staff_cli.command("add")
@click.argument("email")
@click.option(
    "--role",
    type=ROLES,
    required=True,
    help="editor: content; admin: also staff, subscribers and sending.",
)
@click.option("--name", help="The name shown in the audit log  [default: the address's user]")
@click.option(
    "--password",
    "with_password",
    is_flag=True,
    help="Ask for a password (12 characters or more); without, sign-in is by mailed link.",
)
def add_command(email: str, role: str, name: str | None, with_password: bool) -> None:
    """Give EMAIL an account with ROLE. Sign in at PUBLIC_BASE_URL/staff/sign-in."""
    from services.staff import accounts
    from shared.events import utcnow

    password = None
    if with_password:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    member = _in_transaction(
        lambda session: accounts.view(
            accounts.add_member(session, email, role, utcnow(), name, password)
        )
    )
    click.echo(f"added {_describe(member)}")


@staff_cli.command("list")
def list_command() -> None:
    """Every staff member, with role, password or not, disabled or not."""
    from services.staff import accounts

    members = _in_transaction(
        lambda session: [accounts.view(member) for member in accounts.list_members(session)]
    )
    for member in members:
        click.echo(_describe(member))
    if not members:
        click.echo("no staff yet: `sistercities staff add EMAIL --role admin` makes the first")


@staff_cli.command("set-role")
@click.argument("email")
@click.argument("role", type=ROLES)
def set_role_command(email: str, role: str) -> None:
    """Make EMAIL's member an editor or an admin."""
    from services.staff import accounts

    member = _in_transaction(
        lambda session: accounts.view(
            accounts.set_role(session, accounts.find(session, email), role)
        )
    )
    click.echo(f"updated {_describe(member)}")


@staff_cli.command("set-password")
@click.argument("email")
@click.option("--remove", is_flag=True, help="Remove the password: sign-in by mailed link only.")
def set_password_command(email: str, remove: bool) -> None:
    """Ask for a new password for EMAIL's member (or remove it)."""
    from services.staff import accounts

    password = None
    if not remove:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    member = _in_transaction(
        lambda session: accounts.view(
            accounts.set_password(session, accounts.find(session, email), password)
        )
    )
    click.echo(f"updated {_describe(member)}")


@staff_cli.command("disable")
@click.argument("email")
def disable_command(email: str) -> None:
    """Stop EMAIL's member from signing in, and end their sessions now."""
    from services.staff import accounts
    from shared.events import utcnow

    member = _in_transaction(
        lambda session: accounts.view(
            accounts.disable(session, accounts.find(session, email), utcnow())
        )
    )
    click.echo(f"disabled {_describe(member)}")


@staff_cli.command("enable")
@click.argument("email")
def enable_command(email: str) -> None:
    """Let a disabled member sign in again."""
    from services.staff import accounts

    member = _in_transaction(
        lambda session: accounts.view(accounts.enable(session, accounts.find(session, email)))
    )
    click.echo(f"enabled {_describe(member)}")
