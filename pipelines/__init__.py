"""Ray programs for the crawl and render stages."""
