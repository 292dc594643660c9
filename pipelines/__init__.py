"""Ray programs for the crawl and render stages."""

# Installed as a subpackage of ghframes (pyproject.toml package-dir); from the repository root the
# folder would also import as `pipelines`, a second copy of every module (see training/).
if __name__ != "ghframes.pipelines":
    raise ImportError(
        "import the Ray programs as ghframes.pipelines (from ghframes.pipelines.crawl import crawl)"
    )
