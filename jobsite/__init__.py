"""jobsite: a careers site for companies that hire with Lever, built to lose no applicant.

The package imports nothing: the web app is `jobsite.web.app.create_app`, the workers load no Flask."""
