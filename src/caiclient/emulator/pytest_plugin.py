"""pytest fixtures for testing code against the emulator (filled in later)."""
