"""Alembic migrations of the crowd database, run by ``kyokan crowd init`` (see ``kyokan.crowd.db``)."""
