"""Admission: whether something from outside may come in, for every flow that takes it (applications, talent
sign-ups, captures, resumes read to fill a form): hourly quotas per address, per API client and for the site, the
memory guard on Redis, and idempotency keys. The web turns a refusal into its answer."""
