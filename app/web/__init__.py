"""The web console: static files served by the app (no build step, nothing fetched at run time)."""
