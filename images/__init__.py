"""Image builds: `python -m images.build` (`make images`); see images/README.md."""
