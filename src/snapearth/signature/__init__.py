"""EarthSignature: what every image shows (per-image signature, masks), events across time, similarity."""

from snapearth.signature.bands import SignatureInputError
from snapearth.signature.compute import SIGNATURE_VERSION, ItemSignature, compute_signature

__all__ = ["SIGNATURE_VERSION", "ItemSignature", "SignatureInputError", "compute_signature"]
