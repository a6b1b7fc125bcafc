"""The web interface: server-rendered pages under /ui, with htmx for partial updates and
live parts. It calls the same services as the API, under the same roles and rules."""
