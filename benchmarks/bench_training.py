"""Images per second of our training step against the textbook DataLoader pipeline, and the
projected time of Table 2's six runs. Same as `lenet bench`; run it on a quiet machine:

    .venv/bin/python benchmarks/bench_training.py [images] [batch_size]
"""

import sys

from lenet_lib import bench

if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    bench.main(*args)
