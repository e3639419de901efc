"""The HTTP edge: app factory, dependencies, the domain-to-HTTP error table and routes."""
