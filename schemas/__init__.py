"""Versioned table definitions (JSON), packaged so that installed ghframes can load them."""

# Installed as a subpackage of ghframes (pyproject.toml package-dir); from the repository root the
# folder would also import as `schemas`, a second name for the same files (see training/).
if __name__ != "ghframes.schemas":
    raise ImportError(
        "import the table definitions as ghframes.schemas (read them with ghframes.store.schema.load)"
    )
