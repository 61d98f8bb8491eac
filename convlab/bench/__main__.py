"""``python -m convlab.bench``: the same as ``convlab bench``."""

import argparse
import sys

from convlab import bench

parser = argparse.ArgumentParser(prog="convlab bench", description=bench.__doc__.split("\n\n")[0])
bench.add_arguments(parser)
sys.exit(bench.main(parser.parse_args()))
