"""Personal data across the flows: a person found wherever a flow keeps them (`lookup.py`), their data kept only as
long as it is needed and removed when Lever deletes them (`retention.py`)."""
