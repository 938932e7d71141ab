"""Talking to Lever: the only HTTP client of its API (typed errors), what it last answered, and the pacing every call
to it takes, shared by every process through Redis."""
