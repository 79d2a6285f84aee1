"""The cells of the example notebooks, one module per notebook (see ../build_notebooks.py)."""
