"""What every stage shares: configuration, the database and its migrations, the schema,
the typed domain model and its enums, errors for people, locales and the rules tables.

`core` imports nothing else of the project; every other package of `campaigns` may import it.
"""

from pathlib import Path

DATA_DIR = Path(__file__).parent / "data"
"""The rules tables shipped with the package (state hours, holiday bans, region zones)."""
