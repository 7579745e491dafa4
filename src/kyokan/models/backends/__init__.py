"""Built-in model backends, one module per spec prefix (imported on first use)."""
