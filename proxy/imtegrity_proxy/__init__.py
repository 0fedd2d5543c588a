"""IMtegrity proxy: relays AIM (OSCAR) sessions, archives and applies policy."""
