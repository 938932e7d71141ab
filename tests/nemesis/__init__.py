"""The nemesis: the site's real processes (gunicorn web, RQ workers with their schedulers, the embedded redis-server,
the Lever sandbox in strict mode) under a seeded random schedule of faults, with load from several clients and a
checker of the invariants that exactly once promises. Test tooling: product code never imports it.

`scripts/nemesis --seed N` replays a run; `python -m tests.nemesis --help` lists the options. The modules: `proxy`
(the TCP proxy between the site and Redis that the nemesis blackholes or closes), `harness` (the processes, started
and always stopped), `faults` (the catalogue, the seeded schedule, injecting and healing), `load` (the clients),
`checker` (the invariants over the history and what Lever holds), `run` (one run, shrinking, the command line)."""
