"""The project's wiring (settings, URLs, entry points, the embedded stack) on top of the apps."""
