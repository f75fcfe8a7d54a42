"""HTTP routes: thin translations between requests and the run service."""
