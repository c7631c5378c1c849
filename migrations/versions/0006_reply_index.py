"""The replies to a message, by their parent: an edit or a deletion of a message
changes what its replies quote, and finds them through this index.

Partial (only rows that are replies), so the common plain send writes no entry.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index(
        'ix_task_chat_reply_to', 'task_chat', ['reply_to'],
        postgresql_where=sa.text('reply_to IS NOT NULL'), sqlite_where=sa.text('reply_to IS NOT NULL'),
    )


def downgrade():
    op.drop_index('ix_task_chat_reply_to', table_name='task_chat')
