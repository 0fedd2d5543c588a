"""Sans-IO OSCAR protocol: FLAP, SNAC, TLV, ICBM, sign-on, rendezvous and chat."""
