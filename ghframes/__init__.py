"""ghframes: GitHub repository histories as terminal videos for training action models."""
