"""Getting prospects and DNC numbers in: the bucket and its inbox layout, reading CSVs,
phone numbers and time zones, the upload stages (register, stage, dedupe, DNC scrub,
load, file away), DNC list imports and the daily expiry."""
