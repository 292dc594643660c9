"""Versioned table definitions (JSON), packaged so that installed ghframes can load them."""
