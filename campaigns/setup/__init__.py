"""Campaign setup: the campaign file and its sentences, applying it to the database,
resolving campaigns by slug, changing their state and deriving their status."""
