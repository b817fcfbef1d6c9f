"""Reports: the campaign summary rendered as static HTML (and later Markdown and SARIF)."""
