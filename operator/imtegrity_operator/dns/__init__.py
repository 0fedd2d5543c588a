"""CoreDNS override for IMtegrityProxy resources (not implemented yet)."""
