"""Communications: status updates in the "what we know" form, audiences and their redaction,
cadence and reminders, notifications through an outbox, and the public status page."""
