"""The user record that the `register` fixture and the live servers' `Api.register` make."""
from __future__ import annotations

from dataclasses import dataclass

PASSWORD = "correct horse battery"  # every test user's


@dataclass
class User:
    id: int
    email: str
    first_name: str
    last_name: str
    token: str
    refresh_token: str
    password: str = PASSWORD

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}
