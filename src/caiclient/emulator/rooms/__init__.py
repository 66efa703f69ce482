"""The group-chat area (PROTOCOL.md §9): murooms REST routes and the Centrifugo socket."""
