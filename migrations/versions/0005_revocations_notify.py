"""PostgreSQL: every revocation is announced to the server processes as it commits.

A trigger on `revoked_tokens` sends `NOTIFY taskchat_revoked, '<jti>'`; PostgreSQL
delivers it to every listening process when the revoking transaction commits, and
never for one that rolls back. Each process listens (app/realtime/sessions.py) and
ends the sockets that use the token at once, so no socket event has to read the
blocklist. SQLite has no such channel: there every event reads it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("""
        CREATE FUNCTION taskchat_notify_revoked() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('taskchat_revoked', NEW.jti);
            RETURN NULL;
        END $$
    """)
    op.execute("""
        CREATE TRIGGER revoked_tokens_notify AFTER INSERT ON revoked_tokens
        FOR EACH ROW EXECUTE FUNCTION taskchat_notify_revoked()
    """)


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER revoked_tokens_notify ON revoked_tokens")
    op.execute("DROP FUNCTION taskchat_notify_revoked()")
