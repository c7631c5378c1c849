"""`flask` commands for operators."""
from __future__ import annotations

import click
from flask import Flask

from .config import ConfigError, parse_duration
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
