"""`flask` commands for operators."""
from __future__ import annotations

import secrets

import click
from flask import Flask, current_app

from .config import ConfigError, parse_duration
from .extensions import db
from .services import accounts, attachments, tokens


def register(app: Flask) -> None:
    @app.cli.command("create-user")
    @click.option("--email", required=True)
    @click.option("--password", required=True)
    @click.option("--first-name", default="")
    @click.option("--last-name", default="")
    def create_user(email: str, password: str, first_name: str, last_name: str) -> None:
        """Create an account (for a first login without the register endpoint)."""
        user = accounts.register(email=email, password=password, first_name=first_name, last_name=last_name)
        click.echo(f"created user {user.id} <{user.email}>")

    @app.cli.command("purge-uploads")
    @click.option("--older-than", default="24h", show_default=True, help="age of an unsent upload: 90m, 24h, 7d")
    def purge_uploads(older_than: str) -> None:
        """Delete uploads that no message took, older than the given age (run it from cron)."""
        try:
            age = parse_duration(older_than, "--older-than")
        except ConfigError as err:
            raise click.BadParameter(str(err)) from None
        click.echo(f"deleted {attachments.purge_unsent(age)} unsent uploads")

    @app.cli.command("purge-revoked")
    def purge_revoked() -> None:
        """Forget revoked tokens that have expired anyway (logout also does this as it goes)."""
        click.echo(f"deleted {tokens.purge_expired()} expired revocations")

    @app.cli.command("bench-seed")
    @click.option("--users", type=click.IntRange(min=1), default=1000, show_default=True)
    @click.option("--tasks", type=click.IntRange(min=1), default=100, show_default=True)
    def bench_seed(users: int, tasks: int) -> None:
        """Benchmark data: EMPTY the configured database, then users 1..N, tasks 1..K, and
        user u a commenter of task ((u-1) % K) + 1 (the load generator's seed layout, bench/).

        Users get one random, unknown password (no login: a load generator mints its own
        tokens with JWT_SECRET_KEY). Not for a database that holds anything of value."""
        click.echo(f"seeded {seed_benchmark(users, tasks)}")


def seed_benchmark(users: int, tasks: int) -> str:
    """Clear every table of the schema and insert the benchmark's users, tasks and members."""
    from sqlalchemy import insert, text

    from .models import Task, TaskMember, User, utcnow

    engine = db.engine
    tables = db.metadata.sorted_tables
    now = utcnow()
    # One hash for every user (scrypt is slow on purpose); nobody knows the password.
    from werkzeug.security import generate_password_hash

    password_hash = generate_password_hash(secrets.token_urlsafe(24), method=current_app.config["PASSWORD_HASH_METHOD"])
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t.name}"' for t in tables) + " RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(tables):
                conn.execute(table.delete())
            if conn.execute(text("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'")).first():
                conn.execute(text("DELETE FROM sqlite_sequence"))
        batch = 5000
        for start in range(1, users + 1, batch):
            conn.execute(insert(User), [
                {"id": i, "email": f"user{i}@example.com", "password_hash": password_hash,
                 "first_name": "User", "last_name": str(i), "created_at": now}
                for i in range(start, min(users, start + batch - 1) + 1)
            ])
        conn.execute(insert(Task), [
            {"id": k, "title": f"Task {k}", "description": "", "status": "todo", "created_by": None,
             "created_at": now, "updated_at": now, "chat_seq": 0}
            for k in range(1, tasks + 1)
        ])
        for start in range(1, users + 1, batch):
            conn.execute(insert(TaskMember), [
                {"task_id": (u - 1) % tasks + 1, "user_id": u, "role": "commenter", "created_at": now,
                 "last_read_id": 0}
                for u in range(start, min(users, start + batch - 1) + 1)
            ])
        if engine.dialect.name == "postgresql":
            for table, count in (("users", users), ("tasks", tasks)):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), :n)"), {"n": count})
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))
    return f"{users} users, {tasks} tasks, {users} memberships ({engine.dialect.name})"
