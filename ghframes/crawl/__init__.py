"""Crawl: sources, GitHub discovery and history mining into edit rows."""
