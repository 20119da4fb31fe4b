"""Tracking: figures, callbacks that write them, and experiment loggers."""
