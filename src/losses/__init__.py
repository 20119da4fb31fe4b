"""Training losses as small nn.Modules with the papers' defaults."""
