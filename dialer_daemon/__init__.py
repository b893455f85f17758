"""The resident dialer daemon: pacing, claims, calls and dispositions in real time. Imports no Dagster."""
