"""Deciding and placing calls: every dialing rule (windows, state hours, holidays, caps),
the hopper fill, pacing, claims and attempts with their dispositions, DNC list membership,
campaign leases for several daemons and the maintenance of the churned tables.

`dialing` never imports `ingestion` or `reporting`: the daemon's hot path stays small."""
