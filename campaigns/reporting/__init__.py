"""What people read: a campaign's derived status, the dialing day's report and its delivery
by mail, the demo's live figures, and the answers to "why is this prospect (or my hopper)
not being dialed?"."""
