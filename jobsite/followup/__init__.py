"""After delivery: the company's tags on each opportunity, and the pipeline report (where each candidate stands in
Lever, kept fresh by sync and signed webhooks)."""
