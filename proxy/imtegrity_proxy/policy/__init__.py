"""The compliance policy: who may sign on, what may be said, to whom, and with which notices.

The modules here take decoded messages and return decisions or rewritten text;
they do no I/O, so every rule is testable without sockets. ``relay.enforce``
applies the decisions to frames, and ``policy.reload`` swaps the policy of a
running proxy. Import the modules directly: this package imports nothing, so
``config`` can use ``policy.disclaimer`` without an import cycle.
"""
