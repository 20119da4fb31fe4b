"""Training features on top of Lightning: exact-resume RNG state, non-finite guard, progress, speed-ups."""
