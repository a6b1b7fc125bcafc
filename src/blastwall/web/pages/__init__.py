"""The web interface's routes, one module a page."""
