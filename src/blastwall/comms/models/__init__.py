"""Communications: models (one module per part: updates, notifications, status page)."""
