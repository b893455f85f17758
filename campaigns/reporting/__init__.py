"""What people read: the dialing day's report and its delivery by mail, and the answers
to "why is this prospect (or my hopper) not being dialed?"."""
