"""Reports: figures (`figures`, matplotlib) and the HTML page (`page`, Jinja2) that
``opinbench report`` writes from the numbers of `opinbench.analysis`."""
