"""Golden vectors: see golden.py."""
