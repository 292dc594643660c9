"""ghframes: GitHub repository histories as terminal videos for training action models."""

__all__ = ["__version__", "open_dataset"]


def __getattr__(name: str):
    # Lazy, so that `ghframes --help` does not import numpy, pyarrow and pyte.
    if name == "open_dataset":
        from ghframes.store.frames import open_dataset

        return open_dataset
    if name == "__version__":  # the installed distribution's, i.e. pyproject.toml's
        from importlib.metadata import version

        return version("ghframes")
    raise AttributeError(f"module 'ghframes' has no attribute {name!r}")
