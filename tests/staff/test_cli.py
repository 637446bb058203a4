"""Staff accounts from the command line, run as an operator runs them: a process of its own
against the staff database."""

import getpass
import subprocess
import sys

from sqlalchemy import text


def sistercities(env, *args, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sistercities", *args],
        env=env, input=stdin, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_the_first_admin_is_made_at_the_command_line(stack_env, clean_databases):
    empty = sistercities(stack_env, "staff", "list")
    assert empty.returncode == 0, empty.stderr
    assert "no staff yet" in empty.stdout

    added = sistercities(
        stack_env, "staff", "add", "Ada@Example.org", "--role", "admin", "--name", "Ada Lovelace"
    )
    assert added.returncode == 0, added.stderr
    assert "Ada Lovelace <ada@example.org> (admin)" in added.stdout

    again = sistercities(stack_env, "staff", "add", "ada@example.org", "--role", "editor")
    assert again.returncode == 1
    assert "already has an account" in again.stderr

    with clean_databases["staff"].connect() as conn:
        member = conn.execute(text("SELECT email, role, password_hash FROM staff_members")).one()
        entry = conn.execute(text("SELECT actor_id, action, object_kind FROM audit_log")).one()
    assert member == ("ada@example.org", "admin", None)
    assert entry == (f"cli:{getpass.getuser()}", "staff.added", "staff")


def test_roles_passwords_and_disabling(stack_env, clean_databases):
    assert (
        sistercities(stack_env, "staff", "add", "bob@example.org", "--role", "editor").returncode
        == 0
    )

    promoted = sistercities(stack_env, "staff", "set-role", "bob@example.org", "admin")
    assert promoted.returncode == 0, promoted.stderr
    assert "(admin)" in promoted.stdout

    short = sistercities(
        stack_env, "staff", "set-password", "bob@example.org", stdin="short\nshort\n"
    )
    assert short.returncode == 1 and "12 to 1000 characters" in short.stderr
    password = "correct horse battery staple"
    given = sistercities(
        stack_env, "staff", "set-password", "bob@example.org", stdin=f"{password}\n{password}\n"
    )
    assert given.returncode == 0, given.stderr
    assert "(admin, password)" in given.stdout

    disabled = sistercities(stack_env, "staff", "disable", "bob@example.org")
    assert disabled.returncode == 0, disabled.stderr
    listed = sistercities(stack_env, "staff", "list")
    assert "bob@example.org> (admin, password, disabled)" in listed.stdout

    with clean_databases["staff"].connect() as conn:
        stored = conn.execute(text("SELECT password_hash FROM staff_members")).scalar_one()
        actions = conn.execute(text("SELECT action FROM audit_log ORDER BY id")).scalars().all()
    assert stored.startswith("$argon2id$") and password not in stored
    assert actions == ["staff.added", "staff.role_changed", "staff.password_set", "staff.disabled"]

    unknown = sistercities(stack_env, "staff", "disable", "nobody@example.org")
    assert unknown.returncode == 1 and "no staff member" in unknown.stderr
