"""The asyncio edge of the proxy: listeners, upstream connections and relayed sessions."""
