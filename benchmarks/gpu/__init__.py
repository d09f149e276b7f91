"""Benchmarks that need a GPU: random-weight models and the exllamav2 engine's speed."""
