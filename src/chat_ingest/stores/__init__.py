"""Table layouts behind one seam (``base.Store``), with the pure planning of a batch."""
