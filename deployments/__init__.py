"""Model deployments: one package per model, plus the media I/O and serving wrapper they share."""
