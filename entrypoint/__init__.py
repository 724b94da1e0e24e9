"""The image's entrypoint: config.json in, a running kapacitord with its tasks out."""
