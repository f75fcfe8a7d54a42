"""The answer pipeline and its contract; never imports FastAPI or app.api."""
