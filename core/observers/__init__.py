"""Observers that ship with the core (declared as entry points like third-party ones)."""
