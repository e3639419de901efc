"""Use cases, one module per job. Each takes an open connection inside the caller's
transaction and never commits: the edge (route or CLI step) owns the unit of work."""
