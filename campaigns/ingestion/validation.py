"""The staging table's contract, as a pandera DataFrameModel checked after validation.

A staged row is either `invalid` with a reason, or carries an E.164 number,
candidate zones and a zone group the hopper can filter on. The Dagster asset
check runs this over the upload's staged rows and reports failure counts.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from campaigns.core.lifecycle import RowOutcome

E164_NANP = r"^\+1[2-9]\d{2}[2-9]\d{6}$"


class StagedRows(pa.DataFrameModel):
    upload_id: Series[int] = pa.Field(ge=1)
    row_number: Series[int] = pa.Field(ge=1, unique=True)
    phone_e164: Series[str] = pa.Field(nullable=True, str_matches=E164_NANP)
    outcome: Series[str] = pa.Field(isin=[str(o) for o in RowOutcome])
    reason: Series[str] = pa.Field(nullable=True)
    candidate_zones: Series[str] = pa.Field(nullable=True)
    zone_group: Series[str] = pa.Field(nullable=True)

    @pa.dataframe_check
    @classmethod  # pandera makes it one anyway; said here so type checkers agree
    def invalid_rows_have_a_reason(cls, df: pd.DataFrame) -> Series[bool]:
        return (df["outcome"] != str(RowOutcome.INVALID)) | df["reason"].notna()

    @pa.dataframe_check
    @classmethod  # pandera makes it one anyway; said here so type checkers agree
    def valid_rows_have_number_and_zones(cls, df: pd.DataFrame) -> Series[bool]:
        live = df["outcome"] != str(RowOutcome.INVALID)
        return ~live | (df["phone_e164"].notna() & df["zone_group"].notna() & df["candidate_zones"].notna())

    class Config:
        strict = False
        coerce = True


# The columns the contract reads: staging checks only these (a third of the cost of all).
CONTRACT_COLUMNS = tuple(StagedRows.to_schema().columns)


def failure_counts(frame: pd.DataFrame) -> dict[str, int]:
    """Schema failures by check; empty when the batch conforms."""
    try:
        StagedRows.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        return {str(k): int(v) for k, v in cases.groupby("check").size().items()}
    return {}
