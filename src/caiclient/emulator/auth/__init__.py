"""The login area (PROTOCOL.md §3): guest tokens, Firebase e-mail links, tRPC + polling."""
