"""Training: a kernel from an image and its edges (d2l 7.2), and a classifier on batches (d2l 7.6), with its records."""
