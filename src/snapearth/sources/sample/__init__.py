"""The sample archive: simulated Sentinel-1/2 products over real places, with ground truth (docs/sample-archive.md)."""
