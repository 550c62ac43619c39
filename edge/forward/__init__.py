"""Forwarding to the public tiers: upload planning (more to come here with the package reshape)."""
