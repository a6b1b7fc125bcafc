"""Communications: service (one module per part: updates, notifications, status page)."""
