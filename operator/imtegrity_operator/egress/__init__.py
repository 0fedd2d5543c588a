"""Cluster-wide egress policy for IMtegrityProxy resources (not implemented yet)."""
