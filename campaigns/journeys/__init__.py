"""Journeys: the engine's services and the marketer's admin (editor, diagram, dry run, templates)."""
