"""The book's side: claims and verdict tables, figures, new digits, the draw page's export, and
a page's helpers (`page`: `start`, `glue`, and the Sphinx extension `_config.yml` loads)."""
