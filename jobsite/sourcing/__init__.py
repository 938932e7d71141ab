"""Sourcing: the people who are not applying today. A talent community for candidates and event capture for
recruiters, delivered to Lever as Lever asks sourcing integrations to (Create an opportunity, one posting per
request, `perform_as`, company-prefixed tags), on the applications' gate and pacing, exactly once."""
