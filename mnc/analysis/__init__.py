"""Questions answered from the IR alone, before any backend builds anything."""
