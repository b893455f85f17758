"""Campaign setup: the campaign file and its sentences, applying it to the database,
resolving campaigns by slug and changing their state."""
