"""View: the terminal player and the exports (asciicast, HTML, PNG)."""
