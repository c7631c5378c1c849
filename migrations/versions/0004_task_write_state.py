"""Per-task write state: the last message's id and the membership version.

`tasks.last_message_id` is the id of the task's newest message, read under the
task's row lock, so a new message's `previous_id` never misses one committed
while it waited for that lock. `tasks.members_version` moves with every change
of the task's memberships, so a send can tell, under the lock, whether the
membership it read is still current.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_message_id', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('members_version', sa.Integer(), server_default='0', nullable=False))
    op.execute(
        "UPDATE tasks SET last_message_id ="
        " (SELECT max(task_chat.id) FROM task_chat WHERE task_chat.task_id = tasks.id)"
    )


def downgrade():
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_column('members_version')
        batch_op.drop_column('last_message_id')
