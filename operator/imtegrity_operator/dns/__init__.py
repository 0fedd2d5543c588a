"""Cluster DNS override: CoreDNS answers the AIM login host names with the proxy's Service.

``plan`` decides from every IMtegrityProxy which proxy owns which host name,
and whether the server blocks go to the ``coredns-custom`` ConfigMap or to a
marked section of the Corefile. ``render`` writes the CoreDNS server blocks,
and ``corefile`` reads and edits the Corefile byte for byte. ``sync`` sends
the API requests and ``report`` builds the DNSOverridden condition.
``proxy_pod`` keeps the proxy itself away from the override.
"""
