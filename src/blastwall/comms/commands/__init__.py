"""Communications: commands (one module per part: updates, notifications, status page)."""
