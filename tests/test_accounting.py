"""rows == loaded + duplicates + invalid + dnc for every upload, whatever the file holds (property test)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaigns.core import schema as t
from tests.helpers import (
    apply_campaign,
    check_results,
    drop,
    failure,
    materialized,
    run_upload,
)

POOL = [f"(415) 555-{i:04d}" for i in range(12)]  # small, so duplicates within and across files happen
DNC = {"+14155550000", "+14155550001", "+14155550002"}
INVALID = ["", "415555", "1-800-FLOWERS", "4.15555E+09", "(212) 055-1234", "876-523-0123", "+44 20 7946 0958"]

row = st.tuples(
    st.one_of(st.sampled_from(POOL), st.sampled_from(INVALID)),
    st.sampled_from(["", "CA", "ca", "California", "ZZ", "TX"]),
    st.sampled_from(["", "94103", "9410", "ABCDE", "M5V 3L9"]),
)
_names = itertools.count()


@pytest.fixture
def ready(engine, dialer_env):
    apply_campaign(engine)
    with engine.begin() as conn:
        list_id = conn.execute(sa.select(t.dnc_lists.c.id)).scalar_one()
        now = datetime.now(UTC)
        conn.execute(
            sa.insert(t.dnc_numbers),
            [{"dnc_list_id": list_id, "phone_e164": n, "added_at": now} for n in DNC],
        )
    return Path(dialer_env["DIALER_HOME"]) / "bucket"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(rows=st.lists(row, min_size=1, max_size=30))
def test_every_row_is_accounted_for(engine, ready, rows):
    # A line whose every cell is empty is a blank line, not a row (spreadsheets export them).
    rows = [r for r in rows if any(r)] or [(POOL[0], "", "")]
    name = f"p{next(_names)}.csv"
    body = "phone,state,zip\n" + "".join(f'"{p}",{s},{z}\n' for p, s, z in rows)
    drop(ready, f"inbox/acme/renewals/{name}", body)
    with engine.connect() as conn:
        before = conn.execute(sa.select(sa.func.count()).select_from(t.prospects)).scalar_one()
    result = run_upload(f"acme/renewals/{name}")
    assert result.success, failure(result)
    summary = materialized(result, "loaded_prospects")
    assert summary["rows"] == len(rows)
    assert summary["rows"] == summary["loaded"] + summary["duplicates"] + summary["invalid"] + summary["dnc"]
    assert check_results(result)["upload_accounting"] is True
    with engine.connect() as conn:
        after = conn.execute(sa.select(sa.func.count()).select_from(t.prospects)).scalar_one()
        per_number = conn.execute(
            sa.select(sa.func.count()).select_from(t.prospects).group_by(t.prospects.c.phone_e164)
        ).scalars().all()
    assert after - before == summary["loaded"] + summary["dnc"]
    assert set(per_number) <= {1}  # within 90 dupe days a number is never loaded twice
