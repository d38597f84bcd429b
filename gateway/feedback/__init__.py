"""User corrections of the gateway's answers: parsing, storage (SQLAlchemy Core + Alembic) and the API."""
