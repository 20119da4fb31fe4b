"""Custom ops: one Python entry point each, with torch (reference), cpp (OpenMP) and cuda backends."""
