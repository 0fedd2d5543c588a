"""Cluster-wide egress denial: only the proxy's pods may reach the blocked CIDRs.

``plan`` turns every IMtegrityProxy and the cluster's state into the objects
to write. It uses ``detect`` to pick the policy kind and ``networkpolicy`` or
``clusterwide`` to render it. ``selectors`` computes label-selector
complements, and ``analysis`` finds existing policies that leave the blocked
CIDRs open. ``sync`` sends the API requests, ``report`` builds the
EgressEnforced condition, and ``coordinator`` runs the egress and DNS passes
on one background thread.
"""
