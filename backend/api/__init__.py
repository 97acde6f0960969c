"""The HTTP layer: thin routes over ``Services``."""
