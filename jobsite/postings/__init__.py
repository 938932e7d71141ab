"""Reads: Lever's postings through the cache (diskcache), what the site shows of a posting, search and facets,
JSON-LD, and the sanitising of Lever's HTML."""
