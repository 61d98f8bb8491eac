"""What only teaches: the kernels and exercises of the chapter, one module per section, and where its tabs disagree."""
