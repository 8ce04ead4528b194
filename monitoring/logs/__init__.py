"""Reading prediction logs: finding files, mapping columns, the `logs` view, its health check, freshness and the workspace that holds them."""
