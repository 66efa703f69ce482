"""The account area (PROTOCOL.md §4): own account, public profiles, follows, settings, personas."""
