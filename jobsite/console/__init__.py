"""The recruiters' side below the web: console accounts and sessions, integrator API keys, the audit log, and what
the dashboard shows."""
