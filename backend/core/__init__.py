"""Domain types, protocols and pure helpers shared by every layer."""
