"""Small builders shared by tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

MINIMAL = {"name": "Spring Renewals", "workspace": "acme", "locale": "US", "agent": "agent_1"}


def campaign_file(tmp_path: Path, data: dict[str, Any] | None = None, name: str = "c.yaml", **overrides) -> Path:
    content = dict(MINIMAL if data is None else data)
    content.update(overrides)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(content, sort_keys=False), encoding="utf-8")
    return path


def snapshot(engine) -> dict[str, list[tuple]]:
    """Every row of every project table, for 'nothing was written' assertions."""
    import sqlalchemy as sa

    from campaigns.schema import metadata

    with engine.connect() as conn:
        return {
            name: sorted(map(tuple, conn.execute(sa.select(table)).all()), key=repr)
            for name, table in metadata.tables.items()
        }
