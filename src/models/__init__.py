"""Networks and matching algorithms shared by the methods (no Lightning here)."""
