"""IMtegrity operator: reconciles IMtegrityProxy resources with kopf."""
