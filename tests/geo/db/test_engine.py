"""The service's engine: every statement has the statement timeout; the pool has room."""

import pytest
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from geo.db.engine import make_engine
from geo.settings import DatabaseSettings


def test_every_connection_carries_the_statement_timeout(settings):
    short = settings.model_copy(update={"db": DatabaseSettings(statement_timeout_ms=1000)})
    engine = make_engine(short)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SHOW statement_timeout")).scalar() == "1s"
            with pytest.raises(OperationalError, match="statement timeout"):
                conn.execute(text("SELECT pg_sleep(3)"))
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"statement_timeout_ms": 0}, "statement_timeout_ms"),
        ({"pool_size": 8, "max_overflow": 9}, "at least db.pool_size + 2 (10)"),
    ],
)
def test_settings_refuse_no_timeout_and_a_pool_without_room(fields, says):
    with pytest.raises(ValidationError, match=said(says)):
        DatabaseSettings(**fields)


def said(text_: str) -> str:
    import re

    return re.escape(text_)
