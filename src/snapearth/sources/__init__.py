"""Data sources: the sample archive generator, provider harvests, local folders."""
