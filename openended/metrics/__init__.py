"""Curriculum metrics (pure Python, no Ray)."""
