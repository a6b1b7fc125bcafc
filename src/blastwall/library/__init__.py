"""The known-incident library: AI incidents from outside the organisation, for reference."""
