"""The campaign dialer's domain core.

Every rule of the product lives here once: the database schema and its
migrations, campaign settings, lifecycle states and the queries both the
Dagster assets and the resident daemon run. Nothing in this package imports
Dagster or the daemon; both import it.
"""
