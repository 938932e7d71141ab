"""Issue 21: each attack of the second hardening probe, reproduced and now refused."""

from __future__ import annotations

import redis

from jobsite.console import accounts

from .test_admin import ADMIN, sign_in


def test_the_pipeline_page_ignores_url_for_arguments_in_its_query_string(client, r: redis.Redis) -> None:
    """Item 9: `_method`, `endpoint` or `_external` in the query string never reach url_for (they were a 500)."""
    accounts.add_user(r, *ADMIN, accounts.Role.ADMIN)
    sign_in(client, *ADMIN)
    for query in ("_method=POST", "endpoint=x", "_external=1&_scheme=javascript", "from=2026-01-01&_anchor=x"):
        answer = client.get(f"/admin/pipeline?{query}")
        assert answer.status_code == 200, query
        page = answer.get_data(as_text=True)
        assert "javascript" not in page and "#x" not in page
    assert 'href="/admin/report.csv?from=2026-01-01"' in client.get("/admin/pipeline?from=2026-01-01&x=1").get_data(
        as_text=True)
