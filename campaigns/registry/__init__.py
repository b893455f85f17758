"""The National Do Not Call Registry: one per deployment, versioned, exact.

`store` keeps each version as a manifest of area codes, each area code's listed numbers an
exact set (a roaring bitmap of its 7-digit numbers) stored once by checksum, and answers
membership for one number (the daemon) or a whole column of them (an upload's scrub).
`rules` says what a campaign that opted in may dial: listed, not covered, or too old (the
31-day rule).

This package imports only `campaigns.core`; ingestion (imports, scrubs), dialing (fill,
check on dial) and reporting (explain, status) import it.
"""
