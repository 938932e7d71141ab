"""Personal data across the flows: kept only as long as it is needed, and removed when Lever deletes the person."""
