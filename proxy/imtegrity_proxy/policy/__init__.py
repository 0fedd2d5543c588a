"""The compliance policy: who may sign on, what messages may contain, and who may talk to whom.

Apart from ``reload``, which reads the config file, the modules here take
decoded messages and return decisions or rewritten text without I/O, so every
rule is testable without sockets. ``relay.enforce`` applies the decisions to
frames, and ``policy.reload`` swaps the policy of a running proxy.

Import the modules directly. This package imports nothing itself, so
``config`` can use ``policy.disclaimer`` without an import cycle.
"""
