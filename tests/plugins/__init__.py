"""Test action modules, loaded by fixture definitions through `plugins:`."""
