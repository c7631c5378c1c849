"""Registration and login."""
from __future__ import annotations

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from ..actor import Actor
from ..errors import Conflict, InvalidCredentials
from ..extensions import db
from ..models import User

# Checked against when the email is unknown, so both failures cost the same time.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


def actor_of(user: User) -> Actor:
    return Actor(id=user.id, name=user.display_name)


def normalize_email(email: str) -> str:
    return email.strip().lower()


def register(*, email: str, password: str, first_name: str, last_name: str) -> User:
    user = User(
        email=normalize_email(email), first_name=first_name, last_name=last_name,
        password_hash=generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"]),
    )
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError as err:
        db.session.rollback()
        raise Conflict("An account with this email already exists", details={"email": ["Already registered."]}) from err
    return user


def authenticate(*, email: str, password: str) -> User:
    """The user with this email and password. An unknown email and a wrong
    password get the same error, so the answer does not reveal who has an account."""
    user = db.session.scalar(select(User).where(User.email == normalize_email(email)))
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        raise InvalidCredentials()
    if not check_password_hash(user.password_hash, password):
        raise InvalidCredentials()
    return user
