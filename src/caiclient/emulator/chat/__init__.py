"""The chat V2 area (PROTOCOL.md §7, §8): neo REST routes and the ``/neo/ws/`` socket."""
