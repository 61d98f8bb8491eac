# Root conftest: doctest collection imports every module; running __main__ would exit.
collect_ignore = ["convlab/__main__.py"]
