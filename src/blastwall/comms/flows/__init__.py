"""Communications: flows (one module per part: updates, notifications, status page)."""
