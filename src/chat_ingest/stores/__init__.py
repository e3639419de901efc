"""Table layouts: one store per layout owns its row mapping and its SQL."""
