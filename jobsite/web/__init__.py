"""The web side: one blueprint per audience (candidates, API for embedders, admin) plus ops endpoints."""
