"""Communications: api (one module per part: updates, notifications, status page)."""
