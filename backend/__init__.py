"""Byline's read side: store -> retrieve -> answer -> api."""
