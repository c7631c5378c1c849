"""`flask` commands for operators."""
from __future__ import annotations

import click
from flask import Flask

from .services import accounts


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
