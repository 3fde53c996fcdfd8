"""The bottom layer: files and provenance, the notes' numbers, the verdict rules, the inputs
tracker. It imports nothing from the folders above it."""
